// Cell-moving primitives on channels-last images (NHWC) and their adjoints, all as gathers (one thread per
// output element, no atomics):
//
//   pad2d            y (N, H + top + bottom, W + left + right, C): x shifted by (top, left), zeros around
//   crop2d           the adjoint of pad2d: dx[n, h, w, c] = dy[n, h + top, w + left, c]
//   upsample2d       y[n, h, w, c] = x[n, h / F_h, w / F_w, c]                        (nearest neighbour)
//   upsample2d_back  dx[n, h, w, c] = sum_{a < F_h, b < F_w} dy[n, h*F_h + a, w*F_w + b, c]
//   avgpool2d        y[n, i, j, c] = sum_{a < P_h, b < P_w} x[n, i*P_h + a, j*P_w + b, c] / (P_h*P_w)  (floor)
//   avgpool2d_back   dx[n, h, w, c] = dy[n, h / P_h, w / P_w, c] * (1 / (P_h*P_w)), 0 past the last window

#define GRID_STRIDE_LOOP(i, n)                                                                    \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n);     \
         i += (long long)blockDim.x * gridDim.x)

// (idx) -> (s, r, q, c) for an (N, rows, cols, C) array
#define UNPACK_NHWC(idx, rows, cols, c, s, r, q, ch)                                              \
    const int ch = (int)((idx) % (c));                                                            \
    const int q = (int)(((idx) / (c)) % (cols));                                                  \
    const int r = (int)(((idx) / ((long long)(c) * (cols))) % (rows));                            \
    const long long s = (idx) / ((long long)(c) * (cols) * (rows));

template <typename T>
__device__ void pad2d(const T* __restrict__ x, T* __restrict__ y, int n, int h, int w, int c, int top, int left,
                      int ho, int wo)
{
    GRID_STRIDE_LOOP(idx, (long long)n * ho * wo * c) {
        UNPACK_NHWC(idx, ho, wo, c, s, r, q, ch)
        const int xr = r - top, xq = q - left;
        y[idx] = (xr >= 0 && xr < h && xq >= 0 && xq < w) ? x[((s * h + xr) * w + xq) * c + ch] : T(0);
    }
}

// dy (N, H_pad, W_pad, C) -> dx (N, h, w, C)
template <typename T>
__device__ void crop2d(const T* __restrict__ dy, T* __restrict__ dx, int n, int h, int w, int c, int top,
                       int left, int h_pad, int w_pad)
{
    GRID_STRIDE_LOOP(idx, (long long)n * h * w * c) {
        UNPACK_NHWC(idx, h, w, c, s, r, q, ch)
        dx[idx] = dy[((s * h_pad + r + top) * w_pad + q + left) * c + ch];
    }
}

// x (N, h, w, C) -> y (N, h*F_h, w*F_w, C)
template <typename T>
__device__ void upsample2d(const T* __restrict__ x, T* __restrict__ y, int n, int h, int w, int c, int fh, int fw)
{
    const int ho = h * fh, wo = w * fw;
    GRID_STRIDE_LOOP(idx, (long long)n * ho * wo * c) {
        UNPACK_NHWC(idx, ho, wo, c, s, r, q, ch)
        y[idx] = x[((s * h + r / fh) * w + q / fw) * c + ch];
    }
}

// dy (N, h*F_h, w*F_w, C) -> dx (N, h, w, C)
template <typename T>
__device__ void upsample2d_backward(const T* __restrict__ dy, T* __restrict__ dx, int n, int h, int w, int c,
                                    int fh, int fw)
{
    const int ho = h * fh, wo = w * fw;
    GRID_STRIDE_LOOP(idx, (long long)n * h * w * c) {
        UNPACK_NHWC(idx, h, w, c, s, r, q, ch)
        T acc = T(0);
        for (int a = 0; a < fh; ++a)
            for (int b = 0; b < fw; ++b) acc += dy[((s * ho + (long long)r * fh + a) * wo + (long long)q * fw + b) * c + ch];
        dx[idx] = acc;
    }
}

// x (N, h, w, C) -> y (N, h / P_h, w / P_w, C)
template <typename T>
__device__ void avgpool2d(const T* __restrict__ x, T* __restrict__ y, int n, int h, int w, int c, int ph, int pw)
{
    const int ho = h / ph, wo = w / pw;
    const T count = T(ph * pw);
    GRID_STRIDE_LOOP(idx, (long long)n * ho * wo * c) {
        UNPACK_NHWC(idx, ho, wo, c, s, r, q, ch)
        T acc = T(0);
        for (int a = 0; a < ph; ++a)
            for (int b = 0; b < pw; ++b) acc += x[((s * h + (long long)r * ph + a) * w + (long long)q * pw + b) * c + ch];
        y[idx] = acc / count;
    }
}

// dy (N, h / P_h, w / P_w, C) -> dx (N, h, w, C)
template <typename T>
__device__ void avgpool2d_backward(const T* __restrict__ dy, T* __restrict__ dx, int n, int h, int w, int c,
                                   int ph, int pw)
{
    const int ho = h / ph, wo = w / pw;
    const T scale = T(1.0 / (double)(ph * pw));
    GRID_STRIDE_LOOP(idx, (long long)n * h * w * c) {
        UNPACK_NHWC(idx, h, w, c, s, r, q, ch)
        const int i = r / ph, j = q / pw;
        dx[idx] = (i < ho && j < wo) ? dy[((s * ho + i) * wo + j) * c + ch] * scale : T(0);
    }
}

// thin C entry points, one per dtype
#define PAD_POOL_ENTRY_POINTS(T, SUFFIX)                                                                     \
    extern "C" __global__ void pad2d_##SUFFIX(const T* __restrict__ x, T* __restrict__ y, int n, int h,      \
                                              int w, int c, int top, int left, int ho, int wo)               \
    {                                                                                                        \
        pad2d<T>(x, y, n, h, w, c, top, left, ho, wo);                                                       \
    }                                                                                                        \
    extern "C" __global__ void crop2d_##SUFFIX(const T* __restrict__ dy, T* __restrict__ dx, int n, int h,   \
                                               int w, int c, int top, int left, int h_pad, int w_pad)        \
    {                                                                                                        \
        crop2d<T>(dy, dx, n, h, w, c, top, left, h_pad, w_pad);                                              \
    }                                                                                                        \
    extern "C" __global__ void upsample2d_##SUFFIX(const T* __restrict__ x, T* __restrict__ y, int n, int h, \
                                                   int w, int c, int fh, int fw)                             \
    {                                                                                                        \
        upsample2d<T>(x, y, n, h, w, c, fh, fw);                                                             \
    }                                                                                                        \
    extern "C" __global__ void upsample2d_backward_##SUFFIX(const T* __restrict__ dy, T* __restrict__ dx,    \
                                                            int n, int h, int w, int c, int fh, int fw)      \
    {                                                                                                        \
        upsample2d_backward<T>(dy, dx, n, h, w, c, fh, fw);                                                  \
    }                                                                                                        \
    extern "C" __global__ void avgpool2d_##SUFFIX(const T* __restrict__ x, T* __restrict__ y, int n, int h,  \
                                                  int w, int c, int ph, int pw)                              \
    {                                                                                                        \
        avgpool2d<T>(x, y, n, h, w, c, ph, pw);                                                              \
    }                                                                                                        \
    extern "C" __global__ void avgpool2d_backward_##SUFFIX(const T* __restrict__ dy, T* __restrict__ dx,     \
                                                           int n, int h, int w, int c, int ph, int pw)       \
    {                                                                                                        \
        avgpool2d_backward<T>(dy, dx, n, h, w, c, ph, pw);                                                   \
    }

PAD_POOL_ENTRY_POINTS(float, f32)
PAD_POOL_ENTRY_POINTS(double, f64)
