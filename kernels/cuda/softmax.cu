// Per-pixel softmax over the channels (the last axis) for the attention layer; x viewed as (R, C).
//
//   forward:  y[r, :] = exp(x[r, :] - max_c x[r, c]) / sum_c exp(x[r, c] - max_c x[r, c])
//   backward: dx[r, :] = y[r, :] * (dy[r, :] - sum_c dy[r, c] * y[r, c])      (from the retained output y)
//
// One thread per row (C is small: 2 in CaloGAN's attention); sums in channel order, deterministic.

#define GRID_STRIDE_LOOP(i, n)                                                                    \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n);     \
         i += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float softmax_exp(float v) { return expf(v); }
__device__ __forceinline__ double softmax_exp(double v) { return exp(v); }

template <typename T>
__device__ void channel_softmax(const T* __restrict__ x, T* __restrict__ y, int rows, int c)
{
    GRID_STRIDE_LOOP(r, rows) {
        const T* xr = x + r * c;
        T* yr = y + r * c;
        T top = xr[0];
        for (int k = 1; k < c; ++k) top = xr[k] > top ? xr[k] : top;
        T total = T(0);
        for (int k = 0; k < c; ++k) {
            const T e = softmax_exp(xr[k] - top);
            yr[k] = e;
            total += e;
        }
        for (int k = 0; k < c; ++k) yr[k] = yr[k] / total;
    }
}

template <typename T>
__device__ void channel_softmax_backward(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx,
                                         int rows, int c)
{
    GRID_STRIDE_LOOP(r, rows) {
        const T* yr = y + r * c;
        const T* dyr = dy + r * c;
        T dot = T(0);
        for (int k = 0; k < c; ++k) dot += dyr[k] * yr[k];
        for (int k = 0; k < c; ++k) dx[r * c + k] = yr[k] * (dyr[k] - dot);
    }
}

// thin C entry points, one per dtype
#define SOFTMAX_ENTRY_POINTS(T, SUFFIX)                                                                      \
    extern "C" __global__ void channel_softmax_##SUFFIX(const T* __restrict__ x, T* __restrict__ y,          \
                                                        int rows, int c)                                     \
    {                                                                                                        \
        channel_softmax<T>(x, y, rows, c);                                                                   \
    }                                                                                                        \
    extern "C" __global__ void channel_softmax_backward_##SUFFIX(                                            \
        const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx, int rows, int c)               \
    {                                                                                                        \
        channel_softmax_backward<T>(y, dy, dx, rows, c);                                                     \
    }

SOFTMAX_ENTRY_POINTS(float, f32)
SOFTMAX_ENTRY_POINTS(double, f64)
