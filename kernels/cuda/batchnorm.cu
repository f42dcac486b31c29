// Training-mode batch normalisation over every axis but the last: x viewed as (R, C), R = x.size / C.
//
//   forward:  mean = sum_r x / R;  var = sum_r (x - mean)^2 / R (two passes, as numpy.var);
//             inv_std = 1 / sqrt(var + eps);  x_hat = (x - mean) * inv_std;  y = gamma * x_hat + beta
//   backward: dbeta = sum_r dy;  dgamma = sum_r dy * x_hat;
//             dx = (gamma * inv_std / R) * (R * dy - dbeta - x_hat * dgamma)
//
// The column sums run in two deterministic passes with double accumulators: partial sums over n_parts
// contiguous runs of rows (thread (part, c), reading rows coalesced across c), then the parts in order.
// The tiny per-channel arithmetic (mean, inv_std) is left to the caller.

#define GRID_STRIDE_LOOP(i, n)                                                                    \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n);     \
         i += (long long)blockDim.x * gridDim.x)

// partial[part, c] = sum_r (x[r, c] - shift[c])^power over the rows of this part; power is 1 or 2,
// shift is read only when centred is nonzero.
template <typename T>
__device__ void channel_partial_sum(const T* __restrict__ x, const T* __restrict__ shift,
                                    double* __restrict__ partial, int rows, int c, int n_parts, int centred,
                                    int power)
{
    const long long chunk = ((long long)rows + n_parts - 1) / n_parts;
    GRID_STRIDE_LOOP(idx, (long long)n_parts * c) {
        const int ch = (int)(idx % c);
        const long long part = idx / c;
        const long long r_end = min((long long)rows, (part + 1) * chunk);
        const double s = centred ? (double)shift[ch] : 0.0;
        double acc = 0.0;
        for (long long r = part * chunk; r < r_end; ++r) {
            const double v = (double)x[r * c + ch] - s;
            acc += power == 2 ? v * v : v;
        }
        partial[idx] = acc;
    }
}

// partial_a[part, c] = sum_r a[r, c];  partial_ab[part, c] = sum_r a[r, c] * b[r, c]
template <typename T>
__device__ void channel_partial_sum_dot(const T* __restrict__ a, const T* __restrict__ b,
                                        double* __restrict__ partial_a, double* __restrict__ partial_ab,
                                        int rows, int c, int n_parts)
{
    const long long chunk = ((long long)rows + n_parts - 1) / n_parts;
    GRID_STRIDE_LOOP(idx, (long long)n_parts * c) {
        const int ch = (int)(idx % c);
        const long long part = idx / c;
        const long long r_end = min((long long)rows, (part + 1) * chunk);
        double acc_a = 0.0, acc_ab = 0.0;
        for (long long r = part * chunk; r < r_end; ++r) {
            const double va = (double)a[r * c + ch];
            acc_a += va;
            acc_ab += va * (double)b[r * c + ch];
        }
        partial_a[idx] = acc_a;
        partial_ab[idx] = acc_ab;
    }
}

// x_hat = (x - mean) * inv_std;  y = gamma * x_hat + beta
template <typename T>
__device__ void bn_forward_apply(const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ inv_std,
                                 const T* __restrict__ gamma, const T* __restrict__ beta, T* __restrict__ x_hat,
                                 T* __restrict__ y, long long total, int c)
{
    GRID_STRIDE_LOOP(idx, total) {
        const int ch = (int)(idx % c);
        const T xh = (x[idx] - mean[ch]) * inv_std[ch];
        x_hat[idx] = xh;
        y[idx] = gamma[ch] * xh + beta[ch];
    }
}

// dx = (gamma * inv_std / R) * (R * dy - dbeta - x_hat * dgamma)
template <typename T>
__device__ void bn_backward_apply(const T* __restrict__ dy, const T* __restrict__ x_hat,
                                  const T* __restrict__ inv_std, const T* __restrict__ gamma,
                                  const T* __restrict__ dbeta, const T* __restrict__ dgamma, T* __restrict__ dx,
                                  long long total, int c, int rows)
{
    const T count = T(rows);
    GRID_STRIDE_LOOP(idx, total) {
        const int ch = (int)(idx % c);
        dx[idx] = (gamma[ch] * inv_std[ch] / count) * (count * dy[idx] - dbeta[ch] - x_hat[idx] * dgamma[ch]);
    }
}

// out[c] = sum_part partial[part, c], the parts added in order
__device__ void sum_parts_double(const double* __restrict__ partial, double* __restrict__ out, int n_parts, int c)
{
    GRID_STRIDE_LOOP(idx, c) {
        double acc = 0.0;
        for (int part = 0; part < n_parts; ++part) acc += partial[(long long)part * c + idx];
        out[idx] = acc;
    }
}

extern "C" __global__ void channel_sum_parts(const double* __restrict__ partial, double* __restrict__ out,
                                             int n_parts, int c)
{
    sum_parts_double(partial, out, n_parts, c);
}

// thin C entry points, one per dtype; total = rows * c is passed as rows and c (both int)
#define BATCHNORM_ENTRY_POINTS(T, SUFFIX)                                                                    \
    extern "C" __global__ void channel_partial_sum_##SUFFIX(                                                 \
        const T* __restrict__ x, const T* __restrict__ shift, double* __restrict__ partial,                   \
        int rows, int c, int n_parts, int centred, int power)                                                \
    {                                                                                                        \
        channel_partial_sum<T>(x, shift, partial, rows, c, n_parts, centred, power);                         \
    }                                                                                                        \
    extern "C" __global__ void channel_partial_sum_dot_##SUFFIX(                                             \
        const T* __restrict__ a, const T* __restrict__ b, double* __restrict__ partial_a,                     \
        double* __restrict__ partial_ab, int rows, int c, int n_parts)                                        \
    {                                                                                                        \
        channel_partial_sum_dot<T>(a, b, partial_a, partial_ab, rows, c, n_parts);                           \
    }                                                                                                        \
    extern "C" __global__ void bn_forward_apply_##SUFFIX(                                                    \
        const T* __restrict__ x, const T* __restrict__ mean, const T* __restrict__ inv_std,                   \
        const T* __restrict__ gamma, const T* __restrict__ beta, T* __restrict__ x_hat, T* __restrict__ y,     \
        int rows, int c)                                                                                     \
    {                                                                                                        \
        bn_forward_apply<T>(x, mean, inv_std, gamma, beta, x_hat, y, (long long)rows * c, c);                \
    }                                                                                                        \
    extern "C" __global__ void bn_backward_apply_##SUFFIX(                                                   \
        const T* __restrict__ dy, const T* __restrict__ x_hat, const T* __restrict__ inv_std,                 \
        const T* __restrict__ gamma, const T* __restrict__ dbeta, const T* __restrict__ dgamma,               \
        T* __restrict__ dx, int rows, int c)                                                                 \
    {                                                                                                        \
        bn_backward_apply<T>(dy, x_hat, inv_std, gamma, dbeta, dgamma, dx, (long long)rows * c, c, rows);    \
    }

BATCHNORM_ENTRY_POINTS(float, f32)
BATCHNORM_ENTRY_POINTS(double, f64)
