"""The README's example: trace, print and run a jitted function."""
import fjit
import fjit.numpy as jnp


@fjit.jit
def predict(w, b, x):
    return jnp.tanh(x @ w + b)


x = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
w, b = jnp.ones((3, 2)) * 0.5, jnp.zeros(2)
print(predict(w, b, x))                      # runs the cached Program
print(predict.trace(w, b, x))               # the Program it runs: meta-ops only
