// 'valid' 2D cross-correlation, channels-last (NHWC); padding is a separate primitive (pad_pool.cu).
//
//   x (N, H, W, C_in)   w (K_h, K_w, C_in, C_out)   b (C_out)   y (N, H_out, W_out, C_out)
//
//   y[n, i, j, o] = b[o] + sum_{a, b, c} x[n, i*S_h + a, j*S_w + b, c] * w[a, b, c, o]
//
// Every sum runs in a fixed order independent of the launch configuration (gathers, no atomics). The weight
// gradient sums over N*H_out*W_out rows in two passes: per-part partial sums (parts chosen from the shapes
// alone, by the caller), then a sum of the parts in order.

#define GRID_STRIDE_LOOP(i, n)                                                                    \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n);     \
         i += (long long)blockDim.x * gridDim.x)

template <typename T>
__device__ void conv2d_forward(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                               T* __restrict__ y, int n, int h, int wd, int ci, int ho, int wo, int co,
                               int kh, int kw, int sh, int sw, int has_bias)
{
    const long long row = (long long)kw * ci;  // one k_h row of a patch, contiguous in x and in w
    GRID_STRIDE_LOOP(idx, (long long)n * ho * wo * co) {
        const int o = (int)(idx % co);
        long long r = idx / co;
        const int j = (int)(r % wo);
        r /= wo;
        const int i = (int)(r % ho);
        const long long s = r / ho;
        T acc = T(0);
        for (int a = 0; a < kh; ++a) {
            const T* xr = x + ((s * h + (long long)i * sh + a) * wd + (long long)j * sw) * ci;
            const T* wr = w + a * row * co + o;
            for (long long q = 0; q < row; ++q) acc += xr[q] * wr[q * co];
        }
        if (has_bias) acc += bias[o];
        y[idx] = acc;
    }
}

// dx[n, h, w, c] = sum over the windows (i, j) covering (h, w) of sum_o dy[n, i, j, o] * w[h - i*S_h, w - j*S_w, c, o]
template <typename T>
__device__ void conv2d_backward_data(const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx,
                                     int n, int h, int wd, int ci, int ho, int wo, int co,
                                     int kh, int kw, int sh, int sw)
{
    GRID_STRIDE_LOOP(idx, (long long)n * h * wd * ci) {
        const int c = (int)(idx % ci);
        long long r = idx / ci;
        const int xw = (int)(r % wd);
        r /= wd;
        const int xh = (int)(r % h);
        const long long s = r / h;
        const int i_lo = xh >= kh ? (xh - kh) / sh + 1 : 0;
        const int i_hi = min(ho - 1, xh / sh);
        const int j_lo = xw >= kw ? (xw - kw) / sw + 1 : 0;
        const int j_hi = min(wo - 1, xw / sw);
        T acc = T(0);
        for (int i = i_lo; i <= i_hi; ++i) {
            const int a = xh - i * sh;
            for (int j = j_lo; j <= j_hi; ++j) {
                const int b = xw - j * sw;
                const T* dyr = dy + ((s * ho + i) * wo + j) * co;
                const T* wr = w + (((long long)a * kw + b) * ci + c) * co;
                for (int o = 0; o < co; ++o) acc += dyr[o] * wr[o];
            }
        }
        dx[idx] = acc;
    }
}

// partial[part, a, b, c, o] = sum over the rows (n, i, j) of this part of x[n, i*S_h + a, j*S_w + b, c] * dy[n, i, j, o];
// rows are split into n_parts contiguous runs of ceil(rows / n_parts).
template <typename T>
__device__ void conv2d_backward_weight_partial(const T* __restrict__ x, const T* __restrict__ dy,
                                               T* __restrict__ partial, int n, int h, int wd, int ci,
                                               int ho, int wo, int co, int kh, int kw, int sh, int sw,
                                               int n_parts)
{
    const long long k = (long long)kh * kw * ci * co;
    const long long rows = (long long)n * ho * wo;
    const long long chunk = (rows + n_parts - 1) / n_parts;
    GRID_STRIDE_LOOP(idx, (long long)n_parts * k) {
        const long long widx = idx % k;
        const long long part = idx / k;
        const int o = (int)(widx % co);
        const int c = (int)((widx / co) % ci);
        const int b = (int)((widx / ((long long)co * ci)) % kw);
        const int a = (int)(widx / ((long long)co * ci * kw));
        const long long r_end = min(rows, (part + 1) * chunk);
        T acc = T(0);
        for (long long r = part * chunk; r < r_end; ++r) {
            const int j = (int)(r % wo);
            const int i = (int)((r / wo) % ho);
            const long long s = r / ((long long)wo * ho);
            acc += x[((s * h + (long long)i * sh + a) * wd + (long long)j * sw + b) * ci + c] * dy[r * co + o];
        }
        partial[idx] = acc;
    }
}

// out[k] = sum_part partial[part, k], the parts added in order
template <typename T>
__device__ void sum_parts(const T* __restrict__ partial, T* __restrict__ out, int n_parts, int k)
{
    GRID_STRIDE_LOOP(idx, k) {
        T acc = T(0);
        for (int part = 0; part < n_parts; ++part) acc += partial[(long long)part * k + idx];
        out[idx] = acc;
    }
}

// thin C entry points, one per dtype
#define CONV2D_ENTRY_POINTS(T, SUFFIX)                                                                       \
    extern "C" __global__ void conv2d_forward_##SUFFIX(                                                      \
        const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ y,      \
        int n, int h, int wd, int ci, int ho, int wo, int co, int kh, int kw, int sh, int sw, int has_bias)   \
    {                                                                                                        \
        conv2d_forward<T>(x, w, bias, y, n, h, wd, ci, ho, wo, co, kh, kw, sh, sw, has_bias);                \
    }                                                                                                        \
    extern "C" __global__ void conv2d_backward_data_##SUFFIX(                                                \
        const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx,                                \
        int n, int h, int wd, int ci, int ho, int wo, int co, int kh, int kw, int sh, int sw)                 \
    {                                                                                                        \
        conv2d_backward_data<T>(dy, w, dx, n, h, wd, ci, ho, wo, co, kh, kw, sh, sw);                         \
    }                                                                                                        \
    extern "C" __global__ void conv2d_backward_weight_partial_##SUFFIX(                                      \
        const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ partial,                           \
        int n, int h, int wd, int ci, int ho, int wo, int co, int kh, int kw, int sh, int sw, int n_parts)    \
    {                                                                                                        \
        conv2d_backward_weight_partial<T>(x, dy, partial, n, h, wd, ci, ho, wo, co, kh, kw, sh, sw, n_parts); \
    }                                                                                                        \
    extern "C" __global__ void sum_parts_##SUFFIX(const T* __restrict__ partial, T* __restrict__ out,        \
                                                  int n_parts, int k)                                        \
    {                                                                                                        \
        sum_parts<T>(partial, out, n_parts, k);                                                              \
    }

CONV2D_ENTRY_POINTS(float, f32)
CONV2D_ENTRY_POINTS(double, f64)
