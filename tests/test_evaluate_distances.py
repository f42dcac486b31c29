"""FPD and KPD (calosim.evaluate.distances) against closed forms, naive loops, scipy where installed, and
jetnet's own functions where jetnet is installed."""

from __future__ import annotations

import numpy as np
import pytest

from calosim.evaluate import distances as dist


def _gaussian(rng, n, mean, cov):
    return rng.multivariate_normal(np.asarray(mean, float), np.asarray(cov, float), size=n)


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------------------------------------- Frechet
def test_trace_sqrt_product_of_commuting_matrices_is_the_sum_of_root_products():
    d1, d2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 4.0])
    assert dist.trace_sqrt_product(np.diag(d1), np.diag(d2)) == pytest.approx(np.sum(np.sqrt(d1 * d2)), rel=1e-12)


def test_trace_sqrt_product_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg", reason="scipy gives the independent matrix square root")
    rng = np.random.default_rng(1)
    c1, c2 = _random_cov(rng, 6), _random_cov(rng, 6)
    expected = np.trace(linalg.sqrtm(c1 @ c2)).real
    assert dist.trace_sqrt_product(c1, c2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form():
    # for commuting covariances the distance is ||dmu||^2 + sum (sigma1 - sigma2)^2
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    got = dist.frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_a_sample_with_itself_is_zero():
    x = np.random.default_rng(2).normal(size=(500, 8))
    assert abs(dist.frechet_distance_of_samples(x, x)) < 1e-10


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        dist.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_nonnegative_line_fit_recovers_a_line_and_its_boundary_cases():
    x = np.linspace(1e-4, 5e-4, 10)
    a, b, err = dist.nonnegative_line_fit(x, 0.3 + 200.0 * x)
    assert (a, b) == (pytest.approx(0.3), pytest.approx(200.0))
    assert err < 1e-9  # an exact line leaves no residual
    a, b, _ = dist.nonnegative_line_fit(x, -0.1 + 400.0 * x)  # the free intercept would be negative
    assert a == 0.0 and b > 0


def test_nonnegative_line_fit_matches_scipy_curve_fit_with_bounds():
    optimize = pytest.importorskip("scipy.optimize", reason="scipy's curve_fit is jetnet's fit")
    rng = np.random.default_rng(3)
    x = 1.0 / np.linspace(1 / 800, 1 / 2000, 10)
    x = 1.0 / x
    for intercept in (0.02, -0.004):
        y = intercept + 30.0 * x + rng.normal(scale=2e-3, size=x.size)
        params, cov = optimize.curve_fit(lambda t, a, b: a + b * t, x, y, bounds=([0, 0], [np.inf, np.inf]))
        a, b, err = dist.nonnegative_line_fit(x, y)
        assert a == pytest.approx(params[0], abs=1e-6)
        assert b == pytest.approx(params[1], rel=1e-4)
        assert err == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-3)


def test_fpd_batch_sizes_are_even_in_inverse_size():
    sizes = dist.fpd_batch_sizes(20_000, 50_000, 10)
    assert sizes[0] == 20_000 and sizes[-1] in (49_999, 50_000) and sizes.size == 10  # rounded down
    assert np.allclose(np.diff(1.0 / sizes), (1 / 50_000 - 1 / 20_000) / 9, rtol=1e-3)


def test_fpd_of_shifted_gaussians_approaches_the_population_distance():
    rng = np.random.default_rng(4)
    d = 4
    mean_shift = np.full(d, 0.4)
    cov1, cov2 = _random_cov(rng, d), _random_cov(rng, d)
    x, y = _gaussian(rng, 20_000, np.zeros(d), cov1), _gaussian(rng, 20_000, mean_shift, cov2)
    expected = dist.frechet_distance(np.zeros(d), cov1, mean_shift, cov2)
    res = dist.fpd(x, y, np.random.default_rng(0), min_samples=2_000, max_samples=5_000, num_batches=10,
                   normalise=False)
    # the finite samples' own mean and covariance differ from the population's by O(1/sqrt(N))
    assert res["value"] == pytest.approx(expected, rel=0.05)
    assert res["error"] < 0.05 * expected
    # small batches overestimate (the 1/N bias the extrapolation removes)
    assert res["mean_distance"][0] > res["mean_distance"][-1] > res["value"]


def test_fpd_of_one_distribution_is_near_zero_and_far_below_a_shift():
    rng = np.random.default_rng(5)
    cov = _random_cov(rng, 5)
    x, y = _gaussian(rng, 8_000, np.zeros(5), cov), _gaussian(rng, 8_000, np.zeros(5), cov)
    shifted = y + 0.3
    same = dist.fpd(x, y, np.random.default_rng(0), min_samples=1_000, max_samples=4_000, num_batches=5)
    apart = dist.fpd(x, shifted, np.random.default_rng(0), min_samples=1_000, max_samples=4_000, num_batches=5)
    assert same["value"] < 0.05 * apart["value"]
    assert same["value"] <= 3 * same["error"] + 2e-3


def test_fpd_is_reproducible_from_the_generator_seed():
    x = np.random.default_rng(6).normal(size=(600, 3))
    y = np.random.default_rng(7).normal(size=(600, 3)) + 0.1
    first = dist.fpd(x, y, np.random.default_rng(11), min_samples=200, max_samples=500, num_batches=3)
    again = dist.fpd(x, y, np.random.default_rng(11), min_samples=200, max_samples=500, num_batches=3)
    other = dist.fpd(x, y, np.random.default_rng(12), min_samples=200, max_samples=500, num_batches=3)
    assert first == again
    assert first["mean_distance"] != other["mean_distance"]


# ---------------------------------------------------------------------------------------------- kernel
def _mmd2_by_loops(x, y, degree):
    """The unbiased MMD^2 written out pair by pair."""
    def k(a, b):
        return (a @ b / a.size + 1.0) ** degree
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("degree", [1, 3, 4])
def test_mmd2_unbiased_matches_the_pairwise_loops(degree):
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(9, 3)) + 0.5
    assert dist.mmd2_unbiased(x, y, degree) == pytest.approx(_mmd2_by_loops(x, y, degree), rel=1e-10)


def test_mmd2_with_the_linear_kernel_estimates_the_squared_mean_shift():
    # k = x.y / D + 1 makes MMD^2 = ||mu_x - mu_y||^2 / D exactly in expectation
    rng = np.random.default_rng(9)
    shift = np.array([0.5, -0.3, 0.2])
    x, y = rng.normal(size=(4_000, 3)), rng.normal(size=(4_000, 3)) + shift
    assert dist.mmd2_unbiased(x, y, degree=1) == pytest.approx(shift @ shift / 3, rel=0.1)


def test_kpd_separates_a_shift_and_reports_median_and_spread():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(3_000, 4)), rng.normal(size=(3_000, 4))
    same = dist.kpd(x, y, np.random.default_rng(0), num_batches=8, batch_size=1_000)
    apart = dist.kpd(x, y + 0.5, np.random.default_rng(0), num_batches=8, batch_size=1_000)
    assert abs(same["value"]) <= 3 * same["error"] + 1e-4
    assert apart["value"] > 20 * max(abs(same["value"]), same["error"])
    lo, hi = np.percentile(apart["per_batch"], [16.275, 83.725])
    assert apart["value"] == pytest.approx(np.median(apart["per_batch"]))
    assert apart["error"] == pytest.approx((hi - lo) / 2)


def test_mmd2_needs_two_rows_per_sample():
    with pytest.raises(ValueError, match="2 or more"):
        dist.mmd2_unbiased(np.zeros((1, 2)), np.zeros((5, 2)))


# ---------------------------------------------------------------------------------------------- inputs
def test_standardise_by_reference_uses_the_reference_only_and_survives_degenerate_columns():
    rng = np.random.default_rng(13)
    ref = np.column_stack([rng.normal(3.0, 2.0, 400), np.full(400, 7.0)])
    gen = np.column_stack([rng.normal(5.0, 2.0, 300), np.full(300, 7.0)])
    gen[0, 0] = np.nan
    s_ref, s_gen = dist.standardise_by_reference(ref, gen)
    assert np.allclose(s_ref[:, 0].mean(), 0.0) and np.allclose(s_ref[:, 0].std(), 1.0)
    assert np.all(s_ref[:, 1] == 0.0) and np.all(s_gen[:, 1] == 0.0)
    assert np.isfinite(s_gen).all()
    assert s_gen[1:, 0].mean() == pytest.approx((gen[1:, 0].mean() - ref[:, 0].mean()) / ref[:, 0].std())


def test_distances_refuse_nan_features():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="NaN"):
        dist.kpd(x, np.full((10, 2), np.nan), np.random.default_rng(0), batch_size=5)


def test_fpd_kpd_for_samples_scales_the_batches_to_small_samples():
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(1_000, 3)), rng.normal(size=(800, 3))
    res = dist.fpd_kpd_for_samples(x, y, np.random.default_rng(0))
    assert res["fpd"]["batch_sizes"][0] == 320 and res["fpd"]["batch_sizes"][-1] == 800
    assert res["kpd"]["batch_size"] == 800


def test_feature_distances_of_the_report_are_zero_for_one_sample_and_grow_with_a_shift():
    from calosim.evaluate.report import feature_distances

    rng = np.random.default_rng(17)
    energy = rng.uniform(1, 100, 1_500)
    obs = {"E_0": energy * 1e3 * rng.uniform(0.1, 0.2, energy.size), "sigma_0": rng.normal(30, 5, energy.size)}
    shifted = {"E_0": obs["E_0"], "sigma_0": obs["sigma_0"] + 5.0}  # one standard deviation
    same = feature_distances(obs, obs, energy, energy, seed=0)
    apart = feature_distances(obs, shifted, energy, energy, seed=0)
    assert same["features"] == ["log10_E_inc", "E_0", "sigma_0"]
    assert same["fpd"] < 0.02 * apart["fpd"] and abs(same["kpd"]) < 0.02 * apart["kpd"]
    assert feature_distances(obs, shifted, energy, energy, seed=0) == apart  # seeded


# ---------------------------------------------------------------------------------------------- jetnet
def _jetnet_metrics():
    try:
        from jetnet.evaluation import gen_metrics
    except Exception as exc:  # jetnet pulls in torch, energyflow and numba; any of them may be missing
        pytest.skip(f"jetnet is not installed or does not import ({type(exc).__name__}: {exc}); "
                    "pip install jetnet to cross-check FPD and KPD against it")
    return gen_metrics


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # jetnet warns below 50,000 samples
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # jetnet 0.2.5 passes scipy's deprecated sqrtm(disp=)
def test_fpd_equals_jetnets_with_the_same_seed():
    gen_metrics = _jetnet_metrics()
    rng = np.random.default_rng(15)
    x = rng.normal(size=(3_000, 5)) * [1, 2, 3, 4, 5]
    y = rng.normal(size=(2_500, 5)) * [1, 2, 3, 4, 5] + 0.2
    value, error = gen_metrics.fpd(x, y, min_samples=500, max_samples=1_500, num_batches=4, seed=42)
    ours = dist.fpd(x, y, np.random.default_rng(42), min_samples=500, max_samples=1_500, num_batches=4)
    # the same batches; jetnet's curve_fit is iterative (stops at a relative cost change of 1e-8)
    assert ours["value"] == pytest.approx(value, rel=1e-4, abs=1e-9)
    assert ours["error"] == pytest.approx(error, rel=1e-3, abs=1e-9)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_kpd_agrees_with_jetnets():
    gen_metrics = _jetnet_metrics()
    rng = np.random.default_rng(16)
    x = rng.normal(size=(2_000, 4))
    y = rng.normal(size=(2_000, 4)) * 1.2 + 0.3
    xn, yn = dist.max_abs_normalise(x, y)
    assert dist.mmd2_unbiased(xn[:300], yn[:300]) == pytest.approx(
        float(gen_metrics._mmd_poly_quadratic_unbiased(xn[:300], yn[:300])), rel=1e-9)
    value, error = gen_metrics.kpd(x, y, num_batches=10, batch_size=1_000, seed=42)
    ours = dist.kpd(x, y, np.random.default_rng(42), num_batches=10, batch_size=1_000)
    # jetnet seeds each batch separately, so the batches differ: agreement within the spreads
    assert abs(ours["value"] - value) < 3 * (ours["error"] + error)
