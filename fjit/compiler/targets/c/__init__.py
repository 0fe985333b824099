"""The C target: C11 with GNU extensions and OpenMP, built by the system C compiler."""
