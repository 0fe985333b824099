"""Differential testing of fjit: random programs (`generate`), run eagerly and under `jit` on
every backend and compared (`oracle`), failures shrunk to a printed reproducer (`shrink`,
`reproducer`); `python -m fjit.testing.fuzz` runs campaigns."""
