"""Yin et al. (ICLR 2019), "Understanding straight-through estimator in training activation
quantized neural nets": the toy model's experiment (``toy``, its ``problem`` set-up, its coarse
gradient ``descent`` runs, its checks and plots), any surrogate's verdict on it (``ste_check``), and
the quantized-activation networks at MNIST scale (``quant_act``, its data, its report, the ``models``)."""
