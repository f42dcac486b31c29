"""Element-wise activations and the per-pixel channel softmax."""

from __future__ import annotations

from calosim.layers.base import Layer


def sigmoid_of_exp(x, e, xp):
    """sigmoid(x) from e = exp(-|x|), split by sign so that exp never overflows."""
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid(x, xp):
    """1 / (1 + exp(-x)) without overflow."""
    return sigmoid_of_exp(x, xp.exp(-xp.abs(x)), xp)


class LeakyReLU(Layer):
    """max(x, 0) + alpha * min(x, 0)."""

    def __init__(self, alpha: float = 0.3, name: str | None = None):
        super().__init__(name or "leakyrelu")
        self.alpha = float(alpha)

    def forward(self, x, training: bool = True):
        self._x = x  # the input is retained (its sign picks the slope)
        return self.backend.leaky_relu(x, self.alpha)

    def backward(self, dy):
        return self.backend.leaky_relu_backward(self._x, dy, self.alpha)


class KneeReLU(LeakyReLU):
    """x^2 / (x + knee) for x > 0, alpha * x otherwise: a ReLU whose small positive outputs are quadratically
    small (x^2 / knee for x << knee) and large ones linear (x - knee for x >> knee); knee 0 is the leaky ReLU.
    The zeros (and so the fraction of cells > 0) are the ReLU's."""

    def __init__(self, knee: float, alpha: float = 0.0, name: str | None = None):
        super().__init__(alpha, name=name or "kneerelu")
        if knee < 0:
            raise ValueError(f"KneeReLU: knee must be >= 0, got {knee}")
        self.knee = float(knee)

    def forward(self, x, training: bool = True):
        if self.knee == 0:
            return super().forward(x, training)
        xp = self.backend.xp
        self._x = x  # the input is retained (its sign picks the branch)
        positive = xp.maximum(x, 0.0)
        return xp.where(x > 0, positive * positive / (positive + self.knee), self.alpha * x).astype(x.dtype)

    def backward(self, dy):
        if self.knee == 0:
            return super().backward(dy)
        xp = self.backend.xp
        x = xp.maximum(self._x, 0.0)
        slope = x * (x + 2.0 * self.knee) / ((x + self.knee) * (x + self.knee))
        return (dy * xp.where(self._x > 0, slope, self.alpha)).astype(dy.dtype)


class ReLU(LeakyReLU):
    def __init__(self, name: str | None = None):
        super().__init__(0.0, name=name or "relu")


class SplitReLU(Layer):
    """ReLU on the first ``n_plain`` features of the last axis, LeakyReLU(alpha) on the next ones and, with
    ``n_linear``, the identity on the last n_linear (logits): outputs that must be able to reach 0 without
    dying (a leak keeps their gradient; callers read a value <= 0 as 0) beside plain ones."""

    def __init__(self, n_plain: int, alpha: float, n_linear: int = 0, name: str | None = None):
        super().__init__(name or "splitrelu")
        if n_plain < 0 or n_linear < 0 or not 0 <= alpha < 1:
            raise ValueError(f"SplitReLU: n_plain, n_linear >= 0 and 0 <= alpha < 1, got {n_plain}, {n_linear}, "
                             f"{alpha}")
        self.n_plain, self.alpha, self.n_linear = int(n_plain), float(alpha), int(n_linear)

    def _slopes(self, x):
        slope = self.backend.xp.full(x.shape[-1], self.alpha, dtype=x.dtype)
        slope[:self.n_plain] = 0.0
        if self.n_linear:
            slope[x.shape[-1] - self.n_linear:] = 1.0
        return slope

    def forward(self, x, training: bool = True):
        self._x = x  # the input is retained (its sign picks the slope)
        return self.backend.xp.where(x > 0, x, x * self._slopes(x))

    def backward(self, dy):
        return dy * self.backend.xp.where(self._x > 0, 1.0, self._slopes(dy)).astype(dy.dtype)


class Sigmoid(Layer):
    def forward(self, x, training: bool = True):
        self._y = sigmoid(x, self.backend.xp)  # the output is retained
        return self._y

    def backward(self, dy):
        return dy * self._y * (1.0 - self._y)


class Tanh(Layer):
    def forward(self, x, training: bool = True):
        self._y = self.backend.xp.tanh(x)  # the output is retained
        return self._y

    def backward(self, dy):
        return dy * (1.0 - self._y * self._y)


class ChannelSoftmax(Layer):
    """Softmax over the last axis (the channels of each pixel)."""

    def __init__(self, name: str | None = None):
        super().__init__(name or "channelsoftmax")

    def forward(self, x, training: bool = True):
        self._y = self.backend.channel_softmax(x)  # the output is retained
        return self._y

    def backward(self, dy):
        return self.backend.channel_softmax_backward(self._y, dy)
