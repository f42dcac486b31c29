"""Layers with hand-written forward and backward passes, each on any backend."""

from calosim.layers.activations import ChannelSoftmax, KneeReLU, LeakyReLU, ReLU, Sigmoid, SplitReLU, Tanh
from calosim.layers.attention import InpaintingAttention
from calosim.layers.base import Layer, Parameter, Sequential
from calosim.layers.conv import Conv2D
from calosim.layers.dense import Dense
from calosim.layers.dropout import Dropout
from calosim.layers.local import LocallyConnected2D
from calosim.layers.mbd import MinibatchDiscrimination
from calosim.layers.norm import BatchNorm
from calosim.layers.shape import AveragePooling2D, Concat, Flatten, Reshape, UpSampling2D, ZeroPad2D

__all__ = [
    "AveragePooling2D", "BatchNorm", "ChannelSoftmax", "Concat", "Conv2D", "Dense", "Dropout", "Flatten",
    "InpaintingAttention", "KneeReLU", "Layer", "LeakyReLU", "LocallyConnected2D", "MinibatchDiscrimination",
    "Parameter", "ReLU", "Reshape", "Sequential", "Sigmoid", "SplitReLU", "Tanh",
    "UpSampling2D", "ZeroPad2D",
]
