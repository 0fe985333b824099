#pragma once
// fjit's CUDA emulator: the built-ins come from cuda_emu.h (included first by the build)
#include "../cuda_emu.h"
