"""Huh et al. (ICML 2023), "Straightening out the straight-through estimator": the toy Gaussian VQ
(``vq_toy``), the conv VQ bottleneck with Mentzer et al.'s FSQ beside it (``vq_bottleneck``) and
the authors' MNIST ablation (``vq_ablation``), on one training of every quantizer variant
(``vq_training``, ``vq_quantizers``, ``vq_models``, ``vq_plots``)."""
