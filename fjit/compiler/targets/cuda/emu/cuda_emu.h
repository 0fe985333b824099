// cuda_emu.h -- fjit's CUDA emulator: the CUDA C++ that fjit's cuda target generates, run on
// the CPU with g++ (-std=c++17, x86-64 or any glibc target).  Each block's threads run as
// cooperative fibers on ONE OS thread, resumed round-robin; a fiber gives up the CPU only at
// __syncthreads / warp collectives.  Blocks run one after another on an OS thread (optionally
// spread over OpenMP threads).  Build: g++ -include cuda_emu.h -I<this dir>/include ...
// (fjit/compiler/targets/cuda/emulator.py).  Measured design: ../shared/CUDA.md section 2.
// A launch that cannot go on (threads waiting at different barriers, no memory for a stack)
// stops and reports it through fj_emu_error() instead of aborting the process.
#pragma once
#ifndef FJ_CUDA_EMU_H   /* a guard too: the compile cache includes a copy of this file */
#define FJ_CUDA_EMU_H
#define FJ_EMULATE 1
#include <sys/mman.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <vector>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FJ_EMU_ASAN 1
#endif
#if !defined(__x86_64__) && !defined(FJ_EMU_UCONTEXT)
#define FJ_EMU_UCONTEXT 1  // portable fallback, measured ~19x slower (swapcontext makes a syscall)
#endif
#ifdef FJ_EMU_UCONTEXT
#include <ucontext.h>
using fj_emu_ctx = ucontext_t;
#else
using fj_emu_ctx = void*;  // saved stack pointer
#endif
#if !defined(FJ_EMU_STACK_KB) && defined(FJ_EMU_ASAN)
#define FJ_EMU_STACK_KB 512  // ASan frames are larger
#elif !defined(FJ_EMU_STACK_KB)
#define FJ_EMU_STACK_KB 64
#endif

// ---- CUDA qualifiers -------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __constant__
#define __launch_bounds__(...)
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) alignas(n)
// A block-scope thread_local is implicitly static: one instance per OS thread, shared by all the
// fibers (= CUDA threads) of the block that OS thread is running.  Valid because an OS thread runs
// one block at a time, to completion.  Not re-zeroed between blocks (CUDA leaves it undefined too).
#define __shared__ thread_local
// `extern __shared__ T x[];` cannot be mapped by a macro; sources use this instead:
#define FJ_DYN_SHARED(T, name) T* name = reinterpret_cast<T*>(::fj_emu::dyn_shared())
#define __ldg(p) (*(p))

struct dim3 { unsigned x, y, z; constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
using uint3 = dim3;
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;
constexpr int warpSize = 32;

// ---- half / bfloat16 (storage + conversions; arithmetic goes through float) ------------------
struct __half {  // GCC >= 12 has _Float16 on x86-64 (round-to-nearest-even conversions)
  _Float16 v; __half() = default; __half(float f) : v(static_cast<_Float16>(f)) {}
  operator float() const { return static_cast<float>(v); }
};
inline float __half2float(__half h) { return static_cast<float>(h.v); }
inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
struct __nv_bfloat16 {
  uint16_t b; __nv_bfloat16() = default;
  __nv_bfloat16(float f) {
    uint32_t u; std::memcpy(&u, &f, 4);
    b = std::isnan(f) ? uint16_t(0x7fc0) : uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
  operator float() const { uint32_t u = uint32_t(b) << 16; float f; std::memcpy(&f, &u, 4); return f; }
};
inline float __bfloat162float(__nv_bfloat16 h) { return float(h); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }

// ---- math intrinsics that <cmath> lacks ------------------------------------------------------
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __saturatef(float x) { return fminf(fmaxf(x, 0.0f), 1.0f); }
using std::max; using std::min;
using std::isfinite; using std::isinf; using std::isnan; using std::signbit;   // C99 macros in CUDA

// ---- atomics (real atomics: blocks may run on several OS threads) ----------------------------
namespace fj_emu {
template <class T> struct id_ { using type = T; };
template <class... P> constexpr size_t arity(void (*)(P...)) { return sizeof...(P); }
template <class T, class F> T cas_loop(T* p, F f) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static_assert(sizeof(T) == sizeof(U), "atomic on 4- or 8-byte types only");
  U* q = reinterpret_cast<U*>(p); U o = __atomic_load_n(q, __ATOMIC_RELAXED), n; T old;
  do { std::memcpy(&old, &o, sizeof o); T nv = f(old); std::memcpy(&n, &nv, sizeof n); }
  while (!__atomic_compare_exchange_n(q, &o, n, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
}  // namespace fj_emu
template <class T> T atomicAdd(T* p, typename fj_emu::id_<T>::type v) {
  if constexpr (std::is_integral_v<T>) return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  else return fj_emu::cas_loop(p, [v](T o) { return o + v; });
}
template <class T> T atomicMax(T* p, typename fj_emu::id_<T>::type v) { return fj_emu::cas_loop(p, [v](T o) { return o < v ? v : o; }); }
template <class T> T atomicMin(T* p, typename fj_emu::id_<T>::type v) { return fj_emu::cas_loop(p, [v](T o) { return v < o ? v : o; }); }
template <class T> T atomicExch(T* p, typename fj_emu::id_<T>::type v) { return fj_emu::cas_loop(p, [v](T) { return v; }); }
template <class T> T atomicCAS(T* p, typename fj_emu::id_<T>::type c, typename fj_emu::id_<T>::type v) { __atomic_compare_exchange_n(p, &c, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); return c; }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
// ---- fibers ----------------------------------------------------------------------------------
#ifndef FJ_EMU_UCONTEXT
extern "C" void fj_emu_switch(void** save_sp, void* load_sp);  // saves callee-saved regs, swaps rsp
asm(R"(.text; .weak fj_emu_switch; .hidden fj_emu_switch; .type fj_emu_switch,@function
fj_emu_switch:
  pushq %rbp; pushq %rbx; pushq %r12; pushq %r13; pushq %r14; pushq %r15
  subq $8, %rsp; stmxcsr (%rsp); fnstcw 4(%rsp)
  movq %rsp, (%rdi); movq %rsi, %rsp
  ldmxcsr (%rsp); fldcw 4(%rsp); addq $8, %rsp
  popq %r15; popq %r14; popq %r13; popq %r12; popq %rbx; popq %rbp; ret
.size fj_emu_switch, .-fj_emu_switch)");
#endif
namespace fj_emu {
struct Fiber { char* stack = nullptr; dim3 tid; bool done = false; fj_emu_ctx ctx{}; };
struct Warp { int live = 0, arrived = 0; unsigned gen = 0, present[2] = {0, 0}; uint64_t slot[2][32] = {}; };
// The first error of the launch running on this OS thread ("" while none): per thread, since
// Python may launch from several threads at once (cffi releases the GIL).
inline thread_local char error_text[256];
inline thread_local int failed = 0;
inline void fail(const char* what) {
  if (__atomic_exchange_n(&failed, 1, __ATOMIC_SEQ_CST) == 0)
    snprintf(error_text, sizeof error_text, "%s in block (%u,%u,%u)", what, blockIdx.x, blockIdx.y, blockIdx.z);
}
struct Block {  // one per OS thread, reused for every block that thread runs
  std::vector<Fiber> f; std::vector<Warp> w;
  int cur = 0, live = 0, arrived = 0; unsigned gen = 0; uint64_t progress = 0;
  const std::function<void()>* body = nullptr; std::unique_ptr<unsigned char[]> dyn;
  const void* main_bottom = nullptr; size_t main_size = 0; fj_emu_ctx sched{};
};
inline thread_local Block tl_block;
constexpr size_t kStack = size_t(FJ_EMU_STACK_KB) * 1024;
inline void* dyn_shared() { return tl_block.dyn.get(); }
inline void jump(Block& b, Fiber* from, Fiber* to, [[maybe_unused]] bool exiting = false) {  // null = scheduler
#ifdef FJ_EMU_ASAN  // tell ASan which stack is live, or it reports false errors on fiber stacks
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(exiting ? nullptr : &fake, to ? to->stack : b.main_bottom, to ? kStack : b.main_size);
#endif
#ifdef FJ_EMU_UCONTEXT
  swapcontext(from ? &from->ctx : &b.sched, to ? &to->ctx : &b.sched);
#else
  fj_emu_switch(from ? &from->ctx : &b.sched, to ? to->ctx : b.sched);
#endif
#ifdef FJ_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}
inline void yield() { Block& b = tl_block; jump(b, &b.f[b.cur], nullptr); }
inline void fiber_main() {
  Block& b = tl_block;
#ifdef FJ_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.main_bottom, &b.main_size);
#endif
  (*b.body)();
  Fiber& me = b.f[b.cur]; Warp& w = b.w[b.cur >> 5];
  me.done = true; --b.live; --w.live; ++b.progress;  // exited threads no longer count at barriers:
  if (w.arrived > 0 && w.arrived == w.live) { w.arrived = 0; w.present[(w.gen + 1) & 1] = 0; ++w.gen; }
  if (b.arrived > 0 && b.arrived == b.live) { b.arrived = 0; ++b.gen; }
  jump(b, &me, nullptr, true);
}
inline void syncthreads() {
  Block& b = tl_block; unsigned g = b.gen; ++b.progress;
  if (++b.arrived == b.live) { b.arrived = 0; ++b.gen; return; }
  while (b.gen == g) yield();
}
struct Exch { const uint64_t* v; unsigned present; int lane; };
inline Exch warp_exchange(uint64_t v) {  // all live lanes of the warp meet; slots double-buffered
  Block& b = tl_block; Warp& w = b.w[b.cur >> 5]; const int lane = b.cur & 31; unsigned g = w.gen;
  w.slot[g & 1][lane] = v; w.present[g & 1] |= 1u << lane; ++b.progress;
  if (++w.arrived == w.live) { w.arrived = 0; w.present[(g + 1) & 1] = 0; ++w.gen; }
  else while (w.gen == g) yield();
  return {w.slot[g & 1], w.present[g & 1], lane};
}
template <class T> uint64_t bits(T v) { static_assert(sizeof(T) <= 8, "shuffle of >8 bytes"); uint64_t u = 0; std::memcpy(&u, &v, sizeof v); return u; }
template <class T> T unbits(uint64_t u) { T v; std::memcpy(&v, &u, sizeof v); return v; }
inline void run_block(Block& b, const dim3& bd) {
  const int n = int(bd.x * bd.y * bd.z);
  if (int(b.f.size()) < n) b.f.resize(n);
  b.w.assign((n + 31) / 32, Warp{}); b.live = n; b.arrived = 0; b.cur = 0;
  for (int i = 0; i < n; ++i) {
    Fiber& f = b.f[i]; b.w[i >> 5].live++;
    if (!f.stack) {  // mmap'ed stack with a guard page below it
      char* m = static_cast<char*>(mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
      if (m == MAP_FAILED) { fail("cuda_emu: no memory for a thread's stack"); return; }
      mprotect(m, 4096, PROT_NONE); f.stack = m + 4096;
    }
    f.done = false; f.tid = dim3(i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y));
#ifdef FJ_EMU_UCONTEXT
    getcontext(&f.ctx); f.ctx.uc_stack.ss_sp = f.stack; f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = nullptr; makecontext(&f.ctx, fiber_main, 0);
#else
    void** sp = reinterpret_cast<void**>(f.stack + kStack);
    *--sp = nullptr; *--sp = reinterpret_cast<void*>(&fiber_main);  // ret -> fiber_main
    for (int r = 0; r < 6; ++r) *--sp = nullptr;                    // rbp rbx r12..r15
    uint32_t csr[2]; __asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(csr[0]), "=m"(csr[1]));
    *--sp = nullptr; std::memcpy(sp, csr, 8); f.ctx = sp;
#endif
  }
  while (b.live > 0) {  // round-robin until every thread has returned
    const uint64_t before = b.progress; for (int i = 0; i < n; ++i)
      if (!b.f[i].done) { b.cur = i; threadIdx = b.f[i].tid; jump(b, nullptr, &b.f[i]); }
    if (b.live > 0 && b.progress == before) {  // a whole round without any thread moving on:
      fail("deadlock: threads wait at different barriers");   // its fibers are abandoned (their
      return;                                                  // stacks are reused next launch)
    }
  }
}
inline void launch(dim3 grid, dim3 block, size_t shmem, const std::function<void()>& body) {
  const long nb = long(grid.x) * grid.y * grid.z;
#ifdef _OPENMP  // -fopenmp: blocks spread over OS threads (each runs one block at a time)
#pragma omp parallel for schedule(dynamic)
#endif
  for (long i = 0; i < nb; ++i) {
    if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;   // a block failed: stop
    Block& b = tl_block; b.body = &body;
    if (shmem) b.dyn.reset(new unsigned char[shmem]); else b.dyn.reset();
    gridDim = grid; blockDim = block;
    blockIdx = dim3(unsigned(i % grid.x), unsigned((i / grid.x) % grid.y), unsigned(i / (long(grid.x) * grid.y)));
    run_block(b, block);
  }
}
}  // namespace fj_emu
// ---- block barrier and warp collectives ------------------------------------------------------
// The mask argument is ignored: a collective waits for every live lane of the warp, so code that
// lets only some lanes take part (a partial mask) is not emulated faithfully.
inline void __syncthreads() { fj_emu::syncthreads(); }
inline void __syncwarp(unsigned = 0xffffffffu) { fj_emu::warp_exchange(0); }
template <class T> T __shfl_sync(unsigned, T v, int src, int width = 32) {
  auto e = fj_emu::warp_exchange(fj_emu::bits(v)); return fj_emu::unbits<T>(e.v[(e.lane & ~(width - 1)) + (src & (width - 1))]);
}
template <class T> T __shfl_down_sync(unsigned, T v, unsigned d, int width = 32) {
  auto e = fj_emu::warp_exchange(fj_emu::bits(v)); return (e.lane & (width - 1)) + d < unsigned(width) ? fj_emu::unbits<T>(e.v[e.lane + d]) : v;
}
template <class T> T __shfl_up_sync(unsigned, T v, unsigned d, int width = 32) {
  auto e = fj_emu::warp_exchange(fj_emu::bits(v)); return unsigned(e.lane & (width - 1)) >= d ? fj_emu::unbits<T>(e.v[e.lane - d]) : v;
}
template <class T> T __shfl_xor_sync(unsigned, T v, int m, int width = 32) {  // later groups: own value
  auto e = fj_emu::warp_exchange(fj_emu::bits(v)); const int s = e.lane ^ m; return s < (e.lane & ~(width - 1)) + width ? fj_emu::unbits<T>(e.v[s]) : v;
}
inline unsigned __ballot_sync(unsigned, int p) {  // only lanes that reached this collective vote
  auto e = fj_emu::warp_exchange(p != 0); unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= (e.present >> i & 1u) && e.v[i] ? 1u << i : 0u;
  return r; }
inline int __any_sync(unsigned m, int p) { return __ballot_sync(m, p) != 0; } inline int __all_sync(unsigned m, int p) { return __ballot_sync(m, !p) == 0; }
// ---- host side -------------------------------------------------------------------------------
// emu_launch(kernel, grid, block, shmem, args...)  ==  kernel<<<grid, block, shmem>>>(args...)
template <class... P, class... A> void emu_launch(void (*k)(P...), dim3 grid, dim3 block, size_t shmem, A&&... args) {
  std::tuple<std::decay_t<P>...> t(std::forward<A>(args)...);
  fj_emu::launch(grid, block, shmem, std::function<void()>([k, &t] { std::apply(k, t); }));
}
namespace fj_emu {  // cuLaunchKernel-style: params[i] points at argument i
template <class... P, size_t... I> void launch_params(void (*k)(P...), dim3 g, dim3 b, size_t sh, void** p, std::index_sequence<I...>) {
  emu_launch(k, g, b, sh, *static_cast<std::decay_t<P>*>(p[I])...);
}
}  // namespace fj_emu
// One C entry point per kernel, callable from cffi with the same void** params as cuLaunchKernel;
// it returns 0, or 1 when the launch failed (fj_emu_error() says why).
#define FJ_EMU_EXPORT(k) extern "C" int fj_emu_arity_##k(void) { return int(fj_emu::arity(k)); } \
    extern "C" int fj_emu_launch_##k(unsigned gx, unsigned gy, unsigned gz, unsigned bx, \
    unsigned by, unsigned bz, size_t shmem, void** params) { fj_emu::failed = 0; fj_emu::error_text[0] = 0; \
    fj_emu::launch_params(k, dim3(gx, gy, gz), dim3(bx, by, bz), shmem, params, \
    std::make_index_sequence<fj_emu::arity(k)>{}); return fj_emu::failed; }
#define FJ_EMU_ERROR_ENTRY extern "C" const char* fj_emu_error(void) { return fj_emu::error_text; }
#endif  // FJ_CUDA_EMU_H
