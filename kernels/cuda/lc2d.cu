// Locally connected 2D (LC2D) layer, channels-last (NHWC); see backends/base.py for the layout.
//
//   x  (N, H, W, C_in)        w  (H_out, W_out, P, C_out), P = K_h*K_w*C_in ordered (k_h, k_w, c_in)
//   b  (H_out, W_out, C_out)  y  (N, H_out, W_out, C_out), H_out = (H - K_h) / S_h + 1 (likewise W_out)
//
//   y[n, i, j, o] = b[i, j, o] + sum_{a, b, c} x[n, i*S_h + a, j*S_w + b, c] * w[i, j, (a*K_w + b)*C_in + c, o]
//
// One thread per output element, grid-stride loops; every sum runs in a fixed order, so the results do not
// depend on the launch configuration (no atomics). Extents arrive as int (np.int32); flat indices are 64-bit.

#define GRID_STRIDE_LOOP(i, n)                                                                    \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n);     \
         i += (long long)blockDim.x * gridDim.x)

// y = patches(x) . w + b: thread (n, i, j, o) walks its patch; a patch row (fixed k_h) is contiguous in x.
template <typename T>
__device__ void lc2d_forward(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                             T* __restrict__ y, int n, int h, int wd, int ci, int ho, int wo, int co,
                             int kh, int kw, int sh, int sw, int has_bias)
{
    const long long p = (long long)kh * kw * ci;
    const long long row = (long long)kw * ci;  // one k_h row of a patch
    GRID_STRIDE_LOOP(idx, (long long)n * ho * wo * co) {
        const int o = (int)(idx % co);
        long long r = idx / co;
        const int j = (int)(r % wo);
        r /= wo;
        const int i = (int)(r % ho);
        const long long s = r / ho;
        const T* wl = w + ((long long)i * wo + j) * p * co + o;  // w[i, j, 0, o]
        T acc = T(0);
        for (int a = 0; a < kh; ++a) {
            const T* xr = x + ((s * h + (long long)i * sh + a) * wd + (long long)j * sw) * ci;
            const T* wr = wl + a * row * co;
            for (long long q = 0; q < row; ++q) acc += xr[q] * wr[q * co];
        }
        if (has_bias) acc += bias[((long long)i * wo + j) * co + o];
        y[idx] = acc;
    }
}

// dx[n, h, w, c] = sum over the outputs (i, j) whose window covers (h, w) of sum_o dy[n, i, j, o] * w[i, j, p, o],
// a gather: i runs over ceil((h - K_h + 1) / S_h) .. min(H_out - 1, h / S_h); cells past the last window get 0.
template <typename T>
__device__ void lc2d_backward_data(const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx,
                                   int n, int h, int wd, int ci, int ho, int wo, int co,
                                   int kh, int kw, int sh, int sw)
{
    const long long p = (long long)kh * kw * ci;
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
                const T* wr = w + (((long long)i * wo + j) * p + ((long long)a * kw + b) * ci + c) * co;
                for (int o = 0; o < co; ++o) acc += dyr[o] * wr[o];
            }
        }
        dx[idx] = acc;
    }
}

// dw[i, j, p, o] = sum_n patch(x)[n, i, j, p] * dy[n, i, j, o]: one thread per weight, looping over the batch.
template <typename T>
__device__ void lc2d_backward_weight(const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dw,
                                     int n, int h, int wd, int ci, int ho, int wo, int co,
                                     int kh, int kw, int sh, int sw)
{
    const long long p = (long long)kh * kw * ci;
    GRID_STRIDE_LOOP(idx, (long long)ho * wo * p * co) {
        const int o = (int)(idx % co);
        long long r = idx / co;
        const int q = (int)(r % p);
        const long long l = r / p;
        const int i = (int)(l / wo), j = (int)(l % wo);
        const int a = q / (kw * ci), b = (q / ci) % kw, c = q % ci;
        const long long x_step = (long long)h * wd * ci, dy_step = (long long)ho * wo * co;
        const T* xs = x + (((long long)i * sh + a) * wd + (long long)j * sw + b) * ci + c;
        const T* dys = dy + l * co + o;
        T acc = T(0);
        for (int s = 0; s < n; ++s) acc += xs[s * x_step] * dys[s * dy_step];
        dw[idx] = acc;
    }
}

// thin C entry points, one per dtype
#define LC2D_ENTRY_POINTS(T, SUFFIX)                                                                         \
    extern "C" __global__ void lc2d_forward_##SUFFIX(                                                        \
        const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias, T* __restrict__ y,      \
        int n, int h, int wd, int ci, int ho, int wo, int co, int kh, int kw, int sh, int sw, int has_bias)   \
    {                                                                                                        \
        lc2d_forward<T>(x, w, bias, y, n, h, wd, ci, ho, wo, co, kh, kw, sh, sw, has_bias);                  \
    }                                                                                                        \
    extern "C" __global__ void lc2d_backward_data_##SUFFIX(                                                  \
        const T* __restrict__ dy, const T* __restrict__ w, T* __restrict__ dx,                                \
        int n, int h, int wd, int ci, int ho, int wo, int co, int kh, int kw, int sh, int sw)                 \
    {                                                                                                        \
        lc2d_backward_data<T>(dy, w, dx, n, h, wd, ci, ho, wo, co, kh, kw, sh, sw);                           \
    }                                                                                                        \
    extern "C" __global__ void lc2d_backward_weight_##SUFFIX(                                                \
        const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dw,                                \
        int n, int h, int wd, int ci, int ho, int wo, int co, int kh, int kw, int sh, int sw)                 \
    {                                                                                                        \
        lc2d_backward_weight<T>(x, dy, dw, n, h, wd, ci, ho, wo, co, kh, kw, sh, sw);                         \
    }

LC2D_ENTRY_POINTS(float, f32)
LC2D_ENTRY_POINTS(double, f64)
