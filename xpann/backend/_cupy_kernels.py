"""Fused CuPy kernels: optional fast paths over the generic ``xp`` code, which is their reference."""

KERNELS = {}
