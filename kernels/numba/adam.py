"""Adam's update in place on flat C-contiguous arrays (Keras' form, lr_t already bias-corrected).

NumPy: m = beta1*m + (1-beta1)*g; v = beta2*v + (1-beta2)*g*g; param -= lr_t*m / (sqrt(v) + eps).
The scalars arrive in the arrays' dtype, so float32 parameters are updated in float32 as NumPy does.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from calosim.kernels.numba import parallel_and_serial


def _adam_update(param, grad, m, v, lr_t, beta1, beta2, eps, one_m_beta1, one_m_beta2):
    for k in prange(param.size):  # element-wise: no two tasks touch one cell
        g = grad[k]
        mk = beta1 * m[k] + one_m_beta1 * g
        vk = beta2 * v[k] + one_m_beta2 * g * g
        m[k] = mk
        v[k] = vk
        param[k] -= lr_t * mk / (np.sqrt(vk) + eps)


adam_update, adam_update_serial = parallel_and_serial(_adam_update)
