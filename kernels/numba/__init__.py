"""Numba kernels, one op per file. Plain functions: the caller allocates every output.

FASTMATH is the one flag set every kernel uses: it allows reassociation and contraction (vectorised
reductions, FMA) but keeps NaN and infinity checks valid (no "nnan", no "ninf").
"""

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
