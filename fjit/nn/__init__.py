"""fjit.nn: activations, losses, initializers and layers, written in fjit.numpy only, so that
grad, vmap, jit and scan apply to all of it."""
