"""The claims of Yin et al. (2019), Huh et al. (2023) and Mentzer et al. (2023) that stevq tests,
each with the rule that decides it. The rules test what the papers say (a descent direction, not a
monotone curve at one step; codebook use where the paper claims it, the STE's gradient error where
it claims that), and compare FSQ with the best VQ of the same run."""

from stevq.experiments.claims import huh, mentzer, yin
from stevq.experiments.claims.rules import Claim

YIN, HUH, EXAMPLES, MENTZER = yin.YIN, huh.HUH, huh.EXAMPLES, mentzer.MENTZER
STEVQ = "stevq (ste-check): surrogates beyond the papers'"
PAIRED = '"Clearly": paired by seed, the mean change in the better direction exceeds the sd of the changes.'


def _ste_is(name):
    return lambda config: config.get("ste") == name


def stevq_protocol(config):
    """stevq's own protocol with its own choices (not a controlled run that switches one of them)."""
    return config.get("protocol", "stevq") == "stevq" and not huh.switched_choices(config)


def vqtorch_protocol(config):
    return config.get("protocol") == "vqtorch"


def only(setting):
    """stevq's protocol with one of the authors' choices (huh.CHOICES, by ``setting``) switched on:
    a controlled run."""
    return lambda config: (
        config.get("protocol", "stevq") == "stevq"
        and [choice[0] for choice in huh.switched_choices(config)] == [setting]
    )


def cumulative_fix(before, after, statement, rule="Per model: codes used and the task score each clearly better."):
    """The claim that one fix added to the authors' cumulative rows (vq-ablation's row ``before`` ->
    row ``after``) improves codebook use and the task score, on stevq's protocol, beside the
    authors' code's numbers for both rows."""
    return Claim(
        EXAMPLES,
        statement,
        "vq-ablation",
        f"{rule} {PAIRED}",
        huh.fix_improves(before, after),
        stevq_protocol,
        huh.authors_of(before, after),
    )


CLAIMS = [
    # ---------------------------------------------------------------- Yin et al. 2019, toy model
    Claim(
        YIN,
        "At a spurious minimum the identity STE's expected coarse gradient is not 0: its norm is "
        "2 (m-1) (1^T v*)^2 / (sqrt(2 pi) (m+1)^2); the ReLU and clipped-ReLU STEs' vanish there.",
        "yin2019-toy",
        "Per seed: the engine's Monte Carlo coarse gradient (autograd through the STE, 200,000 "
        "Gaussian inputs, standard errors from 50 batch means) is within 5 standard errors of the closed form in "
        "every coordinate for all three STEs, and the identity STE's is more than 5 standard errors from 0.",
        yin.closed_form,
    ),
    Claim(
        YIN,
        "The expected coarse gradients of the ReLU and clipped-ReLU STEs correlate positively with the true "
        "gradient, <E g, df/dw> >= 0; so does the identity STE's, so correlation alone does not separate them.",
        "yin2019-toy",
        "Per seed and STE: <E g, df/dw> >= 0 at every one of 2000 random (v, w).",
        yin.correlated,
    ),
    Claim(
        YIN,
        "With a small enough step, coarse gradient descent with the clipped-ReLU STE decreases the "
        "population loss monotonically.",
        "yin2019-toy",
        "Per seed: every random start decreases f monotonically at the smallest of three steps (0.05, 0.01, "
        "0.002; the same 4000 steps).",
        yin.descends("clipped_relu"),
    ),
    Claim(
        YIN,
        "With a small enough step, coarse gradient descent with the ReLU STE decreases the population loss "
        "monotonically as well.",
        "yin2019-toy",
        "As the previous claim, for the ReLU STE. A failure at every step names the regime: ||w|| shrinks during "
        "training, so a fixed step is not small relative to ||w||.",
        yin.descends("relu"),
    ),
    Claim(
        YIN,
        "Coarse gradient descent with the ReLU and clipped-ReLU STEs converges to a critical point.",
        "yin2019-toy",
        "Per seed and STE: at least 90% of the random starts end with ||df/dv|| + ||E g|| below "
        "1e-3 of its start (step 0.05, 4000 steps).",
        yin.converges,
    ),
    Claim(
        YIN,
        "The identity STE is unstable near spurious minima: its coarse gradient does not vanish there and "
        "it does not converge, while ReLU and clipped ReLU do.",
        "yin2019-toy",
        "Per seed: started next to a spurious minimum, the identity STE does not converge and f rises at least 10 "
        "times, ReLU and clipped ReLU converge, and the identity STE's ratio ||E g||^2 / (||df/dv||^2 + "
        "<E g, df/dw>) at distance 1e-6 exceeds 1e3.",
        yin.identity_unstable,
    ),
    # ---------------------------------------------------------------- any surrogate on Yin et al.'s model
    *(
        Claim(
            YIN if name in ("identity", "relu", "clipped_relu") else STEVQ,
            (
                f"Through the generic check (ste-check), the {name} STE behaves {expected}."
                if name in ("identity", "relu", "clipped_relu")
                else f"The {name} surrogate behaves {expected} on Yin et al.'s model (stevq's question; no paper claims it)."
            ),
            "ste-check",
            f'Per seed: `ste-check --set ste={name}` says "{expected}" (its verdict: E g at the '
            "spurious minimiser, the run started next to it, the random starts reaching a critical point).",
            yin.ste_check(expected),
            _ste_is(name),
            settings=f"--set ste={name}",
        )
        for name, expected in (
            ("identity", "like the identity STE"),
            ("relu", "like clipped ReLU"),
            ("clipped_relu", "like clipped ReLU"),
            ("leaky_clipped_relu", "like clipped ReLU"),
            ("tanh", "like clipped ReLU"),
            ("approx_sign", "like clipped ReLU"),
        )
    ),
    # ---------------------------------------------------------------- Yin et al. 2019, MNIST scale
    Claim(
        YIN,
        "At MNIST scale, at 2 and 4 bits, the identity STE gives the worst training loss of the three STEs "
        "(on Fashion-MNIST here).",
        "quant-act",
        "Per (network, 2 or 4 bits): the identity STE's training loss is clearly higher than both others'. 1 bit, "
        "which the paper does not have, is reported, not tested. " + PAIRED,
        yin.identity_worst,
    ),
    Claim(
        YIN,
        "Continuing from a good ReLU / clipped-ReLU solution with the identity STE raises the training loss, "
        "even with a tiny step.",
        "quant-act",
        "Per (network, starting STE, step 0.001, 0.01, 0.05): the identity STE's mean training-loss change is above "
        "+1% and clearly above the change when continuing with the original STE; the test accuracy is reported. "
        + PAIRED,
        yin.identity_raises_loss,
    ),
    Claim(
        YIN,
        "The clipped ReLU is the better STE on deeper networks (ReLU at least as bad).",
        "quant-act",
        "Per (network, 2 or 4 bits): the clipped-ReLU STE's mean training loss is at most the ReLU STE's.",
        yin.clipped_best,
    ),
    # ---------------------------------------------------------------- Huh et al. 2023, toy and gradient error
    Claim(
        HUH,
        "Toy covariate shift: with a standard codebook most codes are never updated (the paper: over 90%) "
        "and the codes do not follow the embeddings.",
        "vq-toy",
        "Per reading of N(0, 0.5 I), N(-1, 0.3 I) (variances or standard deviations), 20 seeds each: a majority of "
        "the codes is never updated and the sliced-W2 gap closes by under 10%; the share is reported against the "
        "paper's 90%.",
        huh.never_updated,
    ),
    Claim(
        HUH,
        "The affine re-parameterisation closes the gap between codes and embeddings.",
        "vq-toy",
        "Per (reading, affine_lr 1 and 4): the learned affine codebook's gap after 20 steps is at most half the "
        "standard codebook's (the running-statistics variant is reported).",
        huh.affine_closes_gap,
    ),
    Claim(
        HUH,
        "The STE's gradient error grows with the commitment error ||z_e - z_q||.",
        "vq-toy",
        "Per seed: Spearman's rank correlation between the STE's relative gradient error and ||z_e - z_q||^2, over "
        "every record of every autoencoder run, is at least 0.3.",
        huh.error_grows_with_commitment,
    ),
    Claim(
        HUH,
        "Alternating optimisation reduces the STE's gradient error (its stated purpose).",
        "vq-toy",
        "Per codebook scale: the final relative gradient error is clearly lower with alternating optimisation than "
        "with the plain STE. " + PAIRED,
        huh.alternating_reduces_error,
    ),
    # ---------------------------------------------------------------- the authors' MNIST example
    cumulative_fix(
        "baseline",
        "kmeans",
        "k-means initialisation improves codebook use and the task loss (baseline -> k-means).",
        "Per model: codes used on the test images and the task score each clearly better.",
    ),
    cumulative_fix(
        "kmeans", "kmeans+sync", "The synchronized update improves codebook use and the loss (k-means -> + sync)."
    ),
    cumulative_fix(
        "kmeans+sync",
        "kmeans+sync+affine",
        "The affine re-parameterisation improves codebook use and the loss (+ sync -> + affine).",
    ),
    Claim(
        EXAMPLES,
        "Alternating optimisation improves the task loss (baseline -> + alternating; stevq's inner "
        "codebook step, not vqtorch's in-place SGD).",
        "vq-ablation",
        "Per model: the task score clearly better; codes used are reported, not tested (alternating steps only "
        "move chosen codes). " + PAIRED,
        huh.fix_improves("baseline", "alt", utilisation=False),
        stevq_protocol,
        "in-place alternating with k-means: autoencoder 38.3 ± 2.9% codes used, L1 0.120 ± 0.001; classifier "
        "34.8 ± 3.7%, accuracy 81.1 ± 0.1%",
    ),
    Claim(
        EXAMPLES,
        "The fixes combined (k-means, sync, affine, alternating) improve codebook use and the loss over "
        "the plain STE; the authors' code cannot run this combination.",
        "vq-ablation",
        "Per model: codes used and the task score each clearly better than the baseline. " + PAIRED,
        huh.fix_improves("baseline", "kmeans+sync+affine+alt"),
        stevq_protocol,
        'cannot run ("Trying to backward through the graph a second time")',
    ),
    Claim(
        HUH,
        "Index collapse is progressive: the set of codes in use shrinks as training goes on.",
        "vq-ablation",
        "Per (model, k-means row): codes used on the test images clearly fewer at the end (step 1000) than at the "
        "first record (step 250). " + PAIRED,
        huh.collapse_progressive,
        stevq_protocol,
        "k-means rows fall from 71-82% at step 250 to 43-53% at 1000 (autoencoder), 19-81% to 13-67% (classifier)",
    ),
    Claim(
        HUH,
        "The synchronized update speeds up convergence.",
        "vq-ablation",
        "Per model: the task score at the first record (step 250) clearly better with + sync than with k-means "
        "alone. " + PAIRED,
        huh.sync_faster,
        stevq_protocol,
    ),
    Claim(
        EXAMPLES,
        "stevq's vq-ablation (its own protocol) reproduces the authors' code on every published row.",
        "vq-ablation",
        "Per (model, row of the authors' four): the 3-seed mean of the codes used and of the score "
        "within the authors' mean ± 2 sd (sd: the larger of the two spreads).",
        huh.agrees_with_authors,
        stevq_protocol,
        "docs/reference/vqtorch-ablation.md",
    ),
    Claim(
        EXAMPLES,
        "With the authors' choices (protocol vqtorch: farthest-point k-means with up to 100 Lloyd "
        "steps, each batch from a fresh shuffle), stevq reproduces the authors' code on every row.",
        "vq-ablation",
        "As the previous claim, for the run with --set protocol=vqtorch.",
        huh.agrees_with_authors,
        vqtorch_protocol,
        "docs/reference/vqtorch-ablation.md",
        "--set protocol=vqtorch",
    ),
    Claim(
        EXAMPLES,
        "Controlled: stevq's protocol with only the authors' k-means (farthest-point seeding, up to 100 "
        "Lloyd steps; batches still epoch by epoch) reproduces the authors' code on every published row.",
        "vq-ablation",
        "As the previous claims, for the run with that one choice switched.",
        huh.agrees_with_authors,
        only("kmeans_seeding"),
        "docs/reference/vqtorch-ablation.md",
        "--set kmeans_seeding=farthest --set kmeans_steps=100",
    ),
    Claim(
        EXAMPLES,
        "Controlled: stevq's protocol with only the authors' batches (each from a fresh shuffle; k-means++ "
        "seeding still) reproduces the authors' code on every published row.",
        "vq-ablation",
        "As the previous claims, for the run with that one choice switched.",
        huh.agrees_with_authors,
        only("batches"),
        "docs/reference/vqtorch-ablation.md",
        "--set batches=fresh-shuffle",
    ),
    # ---------------------------------------------------------------- Huh et al. 2023, stevq's conv VQ-VAE
    Claim(
        HUH,
        "Index collapse: a VQ-VAE trained with the plain STE uses a small part of a codebook it could use.",
        "vq-bottleneck",
        "Per codebook size: the plain STE uses under 50% of the codes on the test images and "
        "dead-code replacement clearly more (the capacity exists). " + PAIRED,
        huh.collapse,
    ),
    Claim(
        HUH,
        "In stevq's conv VQ-VAE (Adam, 300 steps, no k-means), affine + alternating + sync improve codebook "
        "use and the reconstruction over the plain STE.",
        "vq-bottleneck",
        "Per codebook size: codes used and test MSE each clearly better. " + PAIRED,
        huh.bottleneck_fixes,
    ),
    Claim(
        HUH,
        "The affine re-parameterisation reduces the divergence between embeddings and codes in trained models.",
        "vq-bottleneck",
        "Per (model, codebook size): the sliced-W2 gap clearly smaller with affine than with the plain STE. " + PAIRED,
        huh.affine_gap,
    ),
    # ---------------------------------------------------------------- Mentzer et al. 2023
    Claim(
        MENTZER,
        "FSQ uses (nearly) its whole codebook without any auxiliary loss.",
        "vq-bottleneck",
        "Per (model, codebook size): FSQ uses at least 90% of its codes on the test images.",
        mentzer.fsq_utilisation,
    ),
    Claim(
        MENTZER,
        "FSQ's reconstruction is competitive with VQ's.",
        "vq-bottleneck",
        "Per codebook size: FSQ's mean test MSE at most 1.1 times the best VQ variant's of the same run (the plain "
        "STE is reported).",
        mentzer.fsq_competitive,
    ),
    Claim(
        MENTZER,
        "At small codebooks VQ is comparable to FSQ or better.",
        "vq-bottleneck",
        "At the smallest codebook size: the best VQ variant's mean test MSE at most 1.1 times FSQ's.",
        mentzer.vq_better_when_small,
    ),
    Claim(
        MENTZER,
        "As the codebook grows the comparison shifts towards FSQ: VQ's utilisation falls, FSQ's stays "
        "high, FSQ's relative reconstruction improves.",
        "vq-bottleneck",
        "Smallest against largest codebook size: three checks, as named in the verdict.",
        mentzer.fsq_with_size,
    ),
]
