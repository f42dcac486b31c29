"""The VAE's latent Gaussian: the reparameterisation z = mu + sigma eps and the KL terms, with their gradients."""

def reparameterise(mu, logvar, eps, xp):
    """z = mu + exp(logvar / 2) * eps; returns (z, sigma)."""
    sigma = xp.exp(0.5 * logvar)
    return mu + sigma * eps, sigma


def kl_divergence(mu, logvar, xp):
    """Per-sample KL(N(mu, sigma^2) || N(0, 1)) (N,) and its gradients (d/dmu, d/dlogvar) per sample."""
    var = xp.exp(logvar)
    kl = -0.5 * (1.0 + logvar - mu * mu - var).sum(axis=1)
    return kl, mu, 0.5 * (var - 1.0)


def kl_divergence_gaussians(mu, logvar, mu_p, logvar_p, xp):
    """Per-sample KL(N(mu, sigma^2) || N(mu_p, sigma_p^2)) (N,), diagonal, and its gradients per sample
    (d/dmu, d/dlogvar, d/dmu_p, d/dlogvar_p):
        KL = 1/2 sum_j [logvar_p - logvar + (sigma^2 + (mu - mu_p)^2) / sigma_p^2 - 1]."""
    inv_p = xp.exp(-logvar_p)
    var, delta = xp.exp(logvar), mu - mu_p
    q = (var + delta * delta) * inv_p
    kl = 0.5 * (logvar_p - logvar + q - 1.0).sum(axis=1)
    d_mu = delta * inv_p
    return kl, d_mu, 0.5 * (var * inv_p - 1.0), -d_mu, 0.5 * (1.0 - q)


def reparameterise_backward(dz, sigma, eps):
    """(dL/dmu, dL/dlogvar) from dL/dz through z = mu + sigma * eps, sigma = exp(logvar / 2)."""
    return dz, dz * eps * sigma * 0.5
