"""The paper against its own tables: every quantitative statement of the results of Ogueji et al.
(2022), the figure its text gives, and the figure recomputed from its published Tables 1-9.

Each check is a function of the published cells (:func:`polycompress.reference.as_long`) that
returns a :class:`Check`. Statements are paraphrased (the paper's sentences are its own) and
located by section and footnote; the *stated* figure is transcribed from the text, the
*recomputed* one is computed here, and ``agreement`` says whether the tables bear the statement
out: "agrees", "disagrees", "in part" (some of a statement's parts hold), or "not in the tables"
(the statement rests on results the paper did not publish per language).

Sections covered: 4.1 (with footnotes 2 and 3), 4.2, 4.3, the introduction's restatements of
them, and the methods' count of sparsity levels. Not covered: the conclusion's "up to ~70%"
(no table separates the low-frequency examples it speaks of).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import pandas as pd

from . import reference
from .analysis import relative_to_dense, with_buckets
from .compare import NEAR_ZERO_F1

AGREEMENT = ("agrees", "in part", "disagrees", "not in the tables")


@dataclass(frozen=True)
class Check:
    where: str  # section and footnote of the paper
    statement: str  # our paraphrase of what the text says
    stated: str  # the figure as the text gives it
    recomputed: str  # the figure from the published tables, by the function that made this check
    agreement: str  # one of AGREEMENT


def _regular(p: pd.DataFrame) -> pd.DataFrame:
    return p[p["test_set"] == "regular"]


def _by_sparsity(p: pd.DataFrame, setting: str, scope: str, test_set: str = "regular") -> pd.DataFrame:
    """language x sparsity F1 of one setting, scope and test set."""
    cells = p[(p["setting"] == setting) & (p["scope"] == scope) & (p["test_set"] == test_set)]
    return cells.pivot_table(index="language", columns="sparsity", values="f1")


def sparsity_levels(p: pd.DataFrame) -> Check:
    levels = sorted(s for s in p["sparsity"].unique() if s > 0)
    return Check("Sec. 3, Pruning", "The study considers five sparsity levels, then lists them", "five",
                 f"{len(levels)} in the tables: " + ", ".join(f"{s}%" for s in levels),
                 "agrees" if len(levels) == 5 else "disagrees")


def gain_vs_size(p: pd.DataFrame) -> Check:
    """Footnote 2: a tau between the multilingual gain and the fine-tuning size (dense). The text
    calls it "Kappa's tau"; read here as Kendall's tau, the rank correlation of that name."""
    from scipy.stats import kendalltau

    dense = p[(p["test_set"] == "regular") & (p["sparsity"] == 0) & (p["scope"] == "partial")]
    wide = dense.pivot_table(index="language", columns="setting", values="f1").dropna()
    sizes = reference.table1().set_index("language")["train_sentences"]
    gain = wide["multilingual"] - wide["monolingual"]
    tau = kendalltau(gain.index.map(sizes), gain)
    return Check("Sec. 4.1, footnote 2", "The tau between the multilingual gain and the fine-tuning size, dense "
                 "models, is 0.39 (the text's \"Kappa's τ\", read as Kendall's; the text says lower-resource languages "
                 "gain more, which is a negative tau: the sign is not compared)", "τ = 0.39",
                 f"τ = {tau.statistic:+.2f} (p = {tau.pvalue:.3f}) over the {len(gain)} languages trained both ways, "
                 "gain = multilingual − monolingual F1, size from Table 1",
                 "agrees" if abs(abs(tau.statistic) - 0.39) < 0.005 else "disagrees")


def multilingual_everywhere(p: pd.DataFrame) -> Check:
    """Sec. 4.1 and footnote 3: multilingual beats monolingual at every sparsity, three exceptions."""
    wide = _regular(p).pivot_table(index=["language", "scope", "sparsity"], columns="setting", values="f1").dropna()
    diff = (wide["multilingual"] - wide["monolingual"]).reset_index(name="d")
    worse = diff[diff["d"] < 0]
    # a dense model belongs to both scopes' tables: count it once
    worse = worse[~((worse["sparsity"] == 0) & (worse["scope"] == "incl_embeddings"))]
    listed = "; ".join(f"{r.language} {r.sparsity}% {'dense' if r.sparsity == 0 else r.scope} ({r.d:+.3f})"
                       for r in worse.itertuples())
    expected = {("af", 0), ("hi", 50), ("yo", 98)}
    found = {(r.language, r.sparsity) for r in worse.itertuples()}
    return Check("Sec. 4.1, footnote 3", "Multilingual fine-tuning beats monolingual at every sparsity, with three "
                 "exceptions: af dense, hi at 50% (partial), yo at 98% (incl. embeddings)",
                 "3 exceptions: af 0% (−0.003), hi 50% (−0.01), yo 98% (−0.07)",
                 f"{len(worse)} cells where multilingual is lower: {listed}",
                 "agrees" if found == expected else "disagrees")


def high_sparsity_loss(p: pd.DataFrame) -> Check:
    """Sec. 4.1: at high sparsity the loss is considerably lower for multilingual models ("high":
    70-98%, as Sec. 4.2 names the range)."""
    rel = relative_to_dense(p)
    mono = set(p.loc[p["setting"] == "monolingual", "language"])
    cells = rel[(rel["test_set"] == "regular") & rel["language"].isin(mono) & (rel["sparsity"] >= 70)]
    mean = cells.groupby(["scope", "sparsity", "setting"])["relative_change"].mean().unstack("setting")
    lower = (mean["multilingual"] > mean["monolingual"])
    return Check("Sec. 4.1", "At high sparsity (70-98%) multilingual models lose considerably less than monolingual ones",
                 "considerably lower loss (no figure)",
                 "mean relative change vs dense over the 10 languages trained both ways, multilingual vs monolingual: "
                 + "; ".join(f"{sc} {sp}%: {r['multilingual']:+.1%} vs {r['monolingual']:+.1%}" for (sc, sp), r in mean.iterrows()),
                 "agrees" if lower.all() else ("in part" if lower.any() else "disagrees"))


def moderate_gains_by_size(p: pd.DataFrame) -> Check:
    """Sec. 4.2: at 50-70%, partial pruning improves on dense, in particular with less data."""
    wide = _by_sparsity(p, "multilingual", "partial")
    size = with_buckets(pd.DataFrame({"language": wide.index}))["paper_train_size"].to_numpy()
    share = {s: pd.Series((wide[s] > wide[0]).to_numpy(), index=size).groupby(level=0).mean() for s in (50, 70)}
    text = "; ".join(f"{s}%: " + ", ".join(f"{int(k):,}: {v:.0%}" for k, v in share[s].items()) for s in (50, 70))
    smallest = all(share[s].idxmax() == share[s].index.min() for s in (50, 70))
    return Check("Sec. 4.2", "At moderate sparsity (50-70%) partial pruning improves on dense models, in particular for "
                 "languages with less fine-tuning data", "(no figure)",
                 f"share of languages above dense, by training size: {text}",
                 "agrees" if smallest else "in part")


def majority_benefit(p: pd.DataFrame) -> Check:
    """Sec. 4.2: 26 of 40 languages benefit from moderate pruning."""
    wide = _by_sparsity(p, "multilingual", "partial")
    at50, at70 = (wide[50] > wide[0]), (wide[70] > wide[0])
    counts = {"50%": int(at50.sum()), "70%": int(at70.sum()), "50% or 70%": int((at50 | at70).sum()),
              "50% and 70%": int((at50 & at70).sum())}
    return Check("Sec. 4.2", "Most languages, 26 of 40, score higher with moderate pruning than without", "26 of 40",
                 "languages above their dense F1 (multilingual, partial): "
                 + ", ".join(f"at {k} {v} of {len(wide)}" for k, v in counts.items()),
                 "agrees" if 26 in counts.values() else "disagrees")


def smallest_all_benefit(p: pd.DataFrame) -> Check:
    """Sec. 4.2: all three 100-sentence languages (yo, my, jv) benefit."""
    wide = _by_sparsity(p, "multilingual", "partial")
    langs = ["yo", "my", "jv"]
    gains = {c: [s for s in (50, 70) if wide.loc[c, s] > wide.loc[c, 0]] for c in langs}
    text = "; ".join(f"{c}: dense {wide.loc[c, 0]:.3f}, 50% {wide.loc[c, 50]:.3f}, 70% {wide.loc[c, 70]:.3f}" for c in langs)
    n = sum(bool(g) for g in gains.values())
    return Check("Sec. 4.2", "All three languages with 100 fine-tuning sentences (yo, my, jv) benefit from moderate "
                 "pruning", "3 of 3", f"{n} of 3 above dense at 50% or 70% (multilingual, partial): {text}",
                 "agrees" if n == 3 else ("in part" if n else "disagrees"))


def high_sparsity_by_size(p: pd.DataFrame) -> Check:
    """Sec. 4.2: at 70-98% the languages with least data lose most, absolutely and relatively."""
    rel = with_buckets(relative_to_dense(p))
    cells = rel[(rel["setting"] == "multilingual") & (rel["test_set"] == "regular") & (rel["scope"] == "partial")
                & (rel["sparsity"] >= 70)].assign(absolute=lambda d: d["f1"] - d["dense_f1"])
    mean = cells.groupby(["sparsity", "paper_train_size"])[["relative_change", "absolute"]].mean()
    worst = {s: (g["relative_change"].idxmin()[1], g["absolute"].idxmin()[1]) for s, g in mean.groupby(level=0)}
    hits = [s for s, (r, a) in worst.items() if r == 100 and a == 100]
    text = "; ".join(f"{s}%: 100-sentence bucket {mean.loc[(s, 100), 'relative_change']:+.1%} "
                     f"(largest relative loss: {int(worst[s][0]):,}-sentence bucket)" for s in worst)
    return Check("Sec. 4.2", "From 70% to 98% sparsity the languages with the least fine-tuning data lose the most, "
                 "absolutely and relatively", "(no figure)",
                 f"the 100-sentence bucket loses most (both measures) at {', '.join(f'{s}%' for s in hits) or 'no'} "
                 f"sparsity of {len(worst)}; mean relative change: {text}",
                 "agrees" if len(hits) == len(worst) else ("in part" if hits else "disagrees"))


def weakest_groups_lose_most(p: pd.DataFrame) -> Check:
    """Sec. 4.2: families and scripts weakest when dense suffer most under extreme sparsity."""
    from scipy.stats import spearmanr

    rel = with_buckets(relative_to_dense(p))
    cells = rel[(rel["setting"] == "multilingual") & (rel["test_set"] == "regular") & (rel["scope"] == "partial")
                & (rel["sparsity"] == 98)]
    parts, signs = [], []
    for group in ("family", "script"):
        g = cells.groupby(group).agg(dense=("dense_f1", "mean"), change=("relative_change", "mean"),
                                     n=("language", "size"))
        rho = spearmanr(g["dense"], g["change"])
        weakest, hardest = g["dense"].idxmin(), g["change"].idxmin()
        parts.append(f"{group} ({len(g)} groups): Spearman(dense F1, relative change at 98%) {rho.statistic:+.2f} "
                     f"(p = {rho.pvalue:.3f}); weakest dense: {weakest}, largest loss: {hardest}")
        # weaker groups losing more is a positive rank correlation (low F1, very negative change)
        signs.append(rho.statistic > 0 and rho.pvalue < 0.05)
    return Check("Sec. 4.2", "The families and scripts that score lowest when dense suffer most under extreme sparsity",
                 "(no figure)", "; ".join(parts), "agrees" if all(signs) else ("in part" if any(signs) else "disagrees"))


def dense_near_zero(p: pd.DataFrame) -> Check:
    """Introduction and Sec. 4.3: dense models score close to zero on perturbed sets (the
    introduction's "close-to-0 F1"; Sec. 4.3 says they perform poorly on every perturbation type)."""
    dense = p[(p["test_set"] != "regular") & (p["sparsity"] == 0) & (p["scope"] == "partial")]
    near = bool((dense["f1"] < NEAR_ZERO_F1).all())
    return Check("Introduction, Sec. 4.3", "Dense models score close to zero on every kind of perturbed test set",
                 "close-to-0 F1, all perturbation types",
                 f"in-language sets only are published: dense F1 {dense['f1'].min():.3f}-{dense['f1'].max():.3f} over "
                 f"{len(dense)} (setting, language) cells ({'all' if near else 'not all'} below {NEAR_ZERO_F1}); "
                 "in-script and in-family sets have no table",
                 # the in-language part can be checked, the other two cannot: at best in part
                 "in part" if near else "disagrees")


def partial_recovers(p: pd.DataFrame) -> Check:
    """Sec. 4.3: partial pruning at any level improves on the dense model (perturbed sets)."""
    cells = p[(p["test_set"] != "regular") & (p["scope"] == "partial")]
    wide = cells.pivot_table(index=["setting", "language"], columns="sparsity", values="f1")
    levels = [s for s in wide.columns if s > 0]
    up = sum(int((wide[s] > wide[0]).sum()) for s in levels)
    total = sum(int(wide[s].notna().sum()) for s in levels)
    by_setting = "; ".join(
        f"{setting}: {sum(int((g[s] > g[0]).sum()) for s in levels)} of {sum(int(g[s].notna().sum()) for s in levels)}"
        for setting, g in wide.groupby(level="setting"))
    return Check("Sec. 4.3", "Encoder-only (partial) pruning at any sparsity scores above the dense model on perturbed "
                 "sets", "any level", f"{up} of {total} (setting, language, sparsity) cells above dense ({by_setting}; "
                 "Fig. 3, which the text rests on, aggregates all languages)",
                 "agrees" if up == total else ("in part" if up / total > 0.5 else "disagrees"))


def recovers_close_to_regular(p: pd.DataFrame) -> Check:
    """Introduction: compression recovers close to the regular test performance."""
    cells = p[(p["scope"] == "partial") & (p["sparsity"] > 0)]
    wide = cells.pivot_table(index=["setting", "language", "sparsity"], columns="test_set", values="f1").dropna()
    ratio = wide["in_language"] / wide["regular"]
    return Check("Introduction", "Pruning brings perturbed F1 back close to regular F1", "close to the original (no figure)",
                 f"perturbed / regular F1, partial pruning: median {ratio.median():.2f}, "
                 f"range {ratio.min():.2f}-{ratio.max():.2f} over {len(ratio)} cells; "
                 f"{int((ratio < 0.8).sum())} cells below 0.8",
                 # "close" read as at least 0.8 of the regular score in nine cells of ten
                 "agrees" if ratio.quantile(0.1) >= 0.8 else "in part")


def embeddings_irrelevant_on_regular(p: pd.DataFrame) -> Check:
    """Sec. 4.3: pruning the embeddings does not matter on the regular test set (citing Fig. 2,
    which shows the multilingual models: those are the cells compared)."""
    cells = p[(p["test_set"] == "regular") & (p["sparsity"] > 0) & (p["setting"] == "multilingual")]
    wide = cells.pivot_table(index=["setting", "language", "sparsity"], columns="scope", values="f1")
    d = wide["incl_embeddings"] - wide["partial"]
    return Check("Sec. 4.3", "Pruning the embeddings as well makes no difference on the regular test set",
                 "does not matter", f"multilingual (Fig. 2), incl. embeddings − partial F1: median {d.median():+.3f}, mean {d.mean():+.3f}, "
                 f"{int((d < -0.05).sum())} of {len(d)} cells lower by more than 0.05 (down to {d.min():+.3f})",
                 "agrees" if (d < -0.05).mean() < 0.1 else "in part")


def embeddings_drop_like_dense(p: pd.DataFrame) -> Check:
    """Sec. 4.3: with the embeddings pruned, perturbed F1 drops as severely as the dense model's."""
    pert = p[p["test_set"] != "regular"]
    emb = pert[(pert["scope"] == "incl_embeddings") & (pert["sparsity"] > 0)]
    dense = pert[(pert["sparsity"] == 0) & (pert["scope"] == "partial")]
    return Check("Sec. 4.3", "With the embeddings pruned too, perturbed F1 drops as severely as the dense model's",
                 "the same severe drop", f"perturbed F1 with embeddings pruned: median {emb['f1'].median():.3f} "
                 f"(max {emb['f1'].max():.3f}); dense: median {dense['f1'].median():.3f}",
                 "agrees" if emb["f1"].median() < 0.1 else "disagrees")


CHECKS: tuple[Callable[[pd.DataFrame], Check], ...] = (
    sparsity_levels, gain_vs_size, multilingual_everywhere, high_sparsity_loss, moderate_gains_by_size,
    majority_benefit, smallest_all_benefit, high_sparsity_by_size, weakest_groups_lose_most, dense_near_zero,
    partial_recovers, recovers_close_to_regular, embeddings_irrelevant_on_regular, embeddings_drop_like_dense,
)


def checks(p: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every check on the published cells (``reference.as_long()`` unless given), one row each."""
    p = reference.as_long() if p is None else p
    rows = [asdict(check(p)) for check in CHECKS]
    out = pd.DataFrame(rows)
    bad = set(out["agreement"]) - set(AGREEMENT)
    if bad:
        raise ValueError(f"unknown agreement values {bad}")
    return out
