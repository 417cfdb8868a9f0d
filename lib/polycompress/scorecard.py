"""The scorecard: every claim the book tests, the evidence the paper's own tables give, the
evidence of a grid's runs, a verdict, and the effect with its interval.

One function, :func:`build`, computes it from a grid's results and predictions; the scorecard
chapter shows every column and the introduction a short form (:func:`short`), so the two cannot
disagree. Nothing in it is typed by hand: the claims' wording is fixed here, every number comes
from the published tables (:mod:`polycompress.reference`) or the runs.

Rules (:mod:`polycompress.compare`): a claim about a difference is judged on its cells (one
comparison of one language and test set, averaged over seeds, with an interval for test sentences
and training) by :func:`~polycompress.compare.claim_verdict`: p-values adjusted over the claim's
cells (Benjamini-Hochberg), three seeds that agree in sign needed, collapsed cells left out and
counted; the robustness headline is a level, each dense cell's F1 against
:data:`~polycompress.compare.NEAR_ZERO_F1`, under the same rule; correlations (seeds averaged per
language first) need five languages and p < 0.05. The *effect* is the mean over the claim's kept
cells with a 95% percentile bootstrap interval over those cells (for correlations: Spearman's
coefficient with a bootstrap interval over languages). Cells of one grid share training runs, so
this interval is narrower than one over independent studies would be; the verdict, not the
effect's interval, is what the rule reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import analysis, compare, languages, perturb, reference

#: the chapter where each claim's evidence is drawn (a page of the book)
EVIDENCE = {
    "ogueji-1": "multilingual", "ogueji-2a": "languages", "ogueji-2b": "languages", "ogueji-3": "robustness",
    "ogueji-4": "robustness", "ogueji-5": "robustness", "ogueji-6": "overlap", "ogueji-7": "multilingual",
    "li-1": "structured", "li-2": "structured",
}


@dataclass(frozen=True)
class Effect:
    """A claim's effect: a mean (or a coefficient) with a 95% interval; NaN where there is none."""

    value: float
    low: float
    high: float
    n: int
    what: str

    def text(self) -> str:
        if np.isnan(self.value):
            return f"no estimate ({self.what})"
        interval = "" if np.isnan(self.low) else f" [{self.low:+.3f}, {self.high:+.3f}]"
        return f"{self.value:+.3f}{interval} ({self.what}, n = {self.n})"


def mean_effect(values: pd.Series, what: str, seed: int = 0) -> Effect:
    """Mean of ``values`` with a 95% percentile bootstrap interval over them (NaN below two)."""
    from scipy.stats import bootstrap

    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return Effect(float("nan"), float("nan"), float("nan"), 0, what)
    if len(v) < 2 or np.ptp(v) == 0:
        return Effect(float(v.mean()), float("nan"), float("nan"), len(v), what)
    res = bootstrap((v,), np.mean, n_resamples=2000, method="percentile", random_state=np.random.default_rng(seed))
    return Effect(float(v.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high), len(v), what)


def spearman_effect(x: pd.Series, y: pd.Series, what: str, seed: int = 0) -> Effect:
    """Spearman's coefficient with a 95% bootstrap interval over points (NaN below five points)."""
    from scipy.stats import bootstrap, spearmanr

    ok = x.notna() & y.notna()
    x, y = x[ok].to_numpy(dtype=float), y[ok].to_numpy(dtype=float)
    c = analysis.correlation(pd.Series(x), pd.Series(y))
    if np.isnan(c["spearman"]):
        return Effect(float("nan"), float("nan"), float("nan"), len(x), what)

    def rho(a, b):
        return spearmanr(a, b).statistic

    res = bootstrap((x, y), rho, paired=True, vectorized=False, n_resamples=1000, method="percentile",
                    random_state=np.random.default_rng(seed))
    return Effect(c["spearman"], float(res.confidence_interval.low), float(res.confidence_interval.high), len(x), what)


def describe(cells: pd.DataFrame) -> str:
    """'n cells (s seeds each): k clearly higher, m lower, ...; c collapsed, left out', counted by
    the claim's rule (:func:`polycompress.compare.directions`: adjusted over these cells)."""
    if cells.empty:
        return "no runs in this grid"
    v = compare.directions(cells).value_counts()
    seeds = sorted(cells["seeds"].unique())
    text = (f"{len(cells)} cells ({'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''} each): "
            f"{v.get('higher', 0)} clearly higher, {v.get('lower', 0)} clearly lower, "
            f"{v.get('no clear difference', 0)} within noise")
    if v.get(compare.SEEDS_DISAGREE, 0):
        text += f", {v[compare.SEEDS_DISAGREE]} where the seeds disagree"
    if v.get(compare.TOO_FEW_SEEDS, 0):
        text += f", {v[compare.TOO_FEW_SEEDS]} with fewer than {compare.MIN_SEEDS} seeds (not counted)"
    if v.get("collapsed", 0):
        text += f"; {v['collapsed']} collapsed (a model below {compare.COLLAPSE_F1} regular F1), left out"
    return text


def _difference_claim(key: str, paper: str, claim: str, paper_evidence: str, cells: pd.DataFrame, expected: str,
                      what: str, note: str = "") -> dict:
    # the effect over the cells the rule judges: not collapsed, with enough seeds
    kept = cells[~cells["collapsed"].astype(bool) & (cells["seeds"] >= compare.MIN_SEEDS)] if len(cells) else cells
    effect = mean_effect(kept["difference"] if len(kept) else pd.Series(dtype=float), what)
    return {"key": key, "paper": paper, "claim": claim, "paper's evidence": paper_evidence,
            "our evidence": describe(cells) + note, "effect": effect.text(),
            "verdict": compare.claim_verdict(cells, expected), "evidence": EVIDENCE[key]}


def imp_pairs(results: pd.DataFrame, predictions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The cells Ogueji et al.'s claims rest on (:func:`polycompress.compare.cell_intervals`, seeds
    averaged), IMP and dense runs only (their claims are about IMP): "dense" (pruned vs dense, with
    buckets and sparsity in percent), "setting" (multilingual vs monolingual), "scope"
    (incl_embeddings vs partial), and the robustness ratios (perturbed over regular F1, the
    paper's definition) of the perturbed sets: "dense_ratio" and "scope_ratio"."""
    imp = results[results["method"].isin(["dense", "imp"])]
    dense_pairs, scope_pairs = compare.dense_pairs(imp), compare.scope_pairs(imp)
    out = {"dense": compare.cell_intervals(dense_pairs, predictions),
           "setting": compare.cell_intervals(compare.setting_pairs(imp), predictions),
           "scope": compare.cell_intervals(scope_pairs, predictions),
           "dense_ratio": compare.cell_intervals(dense_pairs[dense_pairs["test_set"] != "regular"], predictions,
                                                 ratio=True),
           "scope_ratio": compare.cell_intervals(scope_pairs[scope_pairs["test_set"] != "regular"], predictions,
                                                 ratio=True)}
    for key in ("dense", "dense_ratio"):
        out[key] = analysis.with_buckets(out[key])
        out[key]["sparsity"] = (out[key]["target_sparsity"] * 100).round().astype(int)
    return out


def collapsed_models(results: pd.DataFrame) -> pd.DataFrame:
    """Each IMP or dense model (run, language) whose regular-test F1 is below the collapse floor:
    setting, model, seed, language and regular F1. A cell with such a model on either side, at
    any seed, is collapsed and left out of the verdicts."""
    r = results[results["method"].isin(["dense", "imp"]) & (results["test_set"] == "regular") & results["f1"].notna()]
    dead = r[r["f1"] < compare.COLLAPSE_F1]
    dead = dead.assign(model=analysis.model_label(dead), **{"regular F1": dead["f1"]})
    return dead[["setting", "model", "seed", "language", "regular F1"]].sort_values(
        ["setting", "model", "language", "seed"]).reset_index(drop=True)


def build(results: pd.DataFrame, predictions: pd.DataFrame, paper: pd.DataFrame | None = None,
          overlap: pd.DataFrame | None = None, pairs: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per claim: key, paper, claim, paper's evidence, our evidence, effect, verdict, evidence page.

    ``paper``: the published cells (default :func:`polycompress.reference.as_long`); ``overlap``:
    full-corpus entity overlap per language (default :func:`polycompress.analysis.corpus_overlap`
    of the paper's languages in the mirror, cached); ``pairs``: :func:`imp_pairs` if already computed.
    """
    paper = reference.as_long() if paper is None else paper
    ours = analysis.as_long(results)
    pairs = imp_pairs(results, predictions) if pairs is None else pairs
    dense_pairs, setting_pairs, scope_pairs = pairs["dense"], pairs["setting"], pairs["scope"]
    dense_ratio, scope_ratio = pairs["dense_ratio"], pairs["scope_ratio"]
    rows = []
    ogueji = "Ogueji et al."

    # 1. Multilingual beats monolingual, dense and pruned (Fig. 1)
    wide = paper[paper["test_set"] == "regular"].pivot_table(index=["language", "scope", "sparsity"],
                                                             columns="setting", values="f1").dropna()
    # a dense model is in both scopes' tables: count it once (under partial)
    wide = wide[~((wide.index.get_level_values("sparsity") == 0)
                  & (wide.index.get_level_values("scope") == "incl_embeddings"))]
    better = wide["multilingual"] > wide["monolingual"]
    rows.append(_difference_claim(
        "ogueji-1", ogueji, "Multilingual fine-tuning gives higher F1 than monolingual, dense and pruned (Fig. 1)",
        f"multilingual higher in {better.sum()} of {len(better)} (language, scope, sparsity) cells, each dense model "
        f"counted once; mean difference "
        f"{(wide['multilingual'] - wide['monolingual']).mean():+.3f}",
        setting_pairs[setting_pairs["test_set"] == "regular"], "higher", "multilingual − monolingual F1"))

    # 2a. Flip-flop: moderate sparsity helps the lowest-resource languages. The paper's evidence
    # and ours in one scope (partial: the paper's Fig. 2) and at the same moderate sparsities
    moderate = (50, 70)
    g = analysis.with_buckets(pd.concat([analysis.gains_at(paper, sp) for sp in moderate], ignore_index=True))
    low, rest = g[g["paper_train_size"] <= 100], g[g["paper_train_size"] > 100]
    regular_multi = dense_pairs[(dense_pairs["setting"] == "multilingual") & (dense_pairs["test_set"] == "regular")
                                & (dense_pairs["paper_train_size"] <= 100)]
    cells = regular_multi[regular_multi["sparsity"].isin(moderate) & (regular_multi["scope"] == "partial")]
    rows.append(_difference_claim(
        "ogueji-2a", ogueji, "Moderate sparsity (50-70%) raises F1 of the lowest-resource languages, multilingual "
        "model (flip-flop)", f"partial scope, 50% and 70%: {int(low['gains'].sum())} of {len(low)} (language, "
        f"sparsity) cells of the 100-sentence bucket gain, and {int(rest['gains'].sum())} of {len(rest)} of the others",
        cells, "higher", "pruned − dense F1",
        f" ({', '.join(sorted(cells['language'].unique()))}; partial scope, "
        f"{', '.join(f'{v}%' for v in sorted(cells['sparsity'].unique()))})" if len(cells) else ""))

    # 2b. ... and high sparsity lowers it
    rel = analysis.with_buckets(analysis.relative_to_dense(paper))
    rel90 = rel[(rel["setting"] == "multilingual") & (rel["test_set"] == "regular") & (rel["sparsity"] == 90)]
    by_bucket = rel90.groupby("paper_train_size")["relative_change"].median()
    cells = regular_multi[regular_multi["sparsity"] == 90]
    dead_pruned = len(cells) and (cells["collapsed"] & (cells["regular_a"] >= compare.COLLAPSE_F1)).any()
    rows.append(_difference_claim(
        "ogueji-2b", ogueji, "High sparsity (90%) lowers F1 of the lowest-resource languages, and most of all buckets",
        "median relative change at 90% by bucket: " + ", ".join(f"{int(k):,}: {v:+.1%}" for k, v in by_bucket.items())
        + f"; the 100 bucket is {'the lowest' if by_bucket.idxmin() == 100 else 'not the lowest'}",
        cells, "lower", "pruned − dense F1",
        " (whether they lose most is not tested: one language per bucket cell)"
        + ("; the collapsed ones are pruned models that lost the task, the claim's direction taken to its end, "
           "but the rule leaves them out" if dead_pruned else "")))

    # 3. The robustness headline: dense models near zero on perturbed sets (Sec. 4.3, Fig. 3, Tables 4 and 8)
    paper_dense = paper[(paper["test_set"] != "regular") & (paper["sparsity"] == 0) & (paper["scope"] == "partial")]
    paper_pruned = paper[(paper["test_set"] != "regular") & (paper["sparsity"] > 0) & (paper["scope"] == "partial")]
    dense_runs = results[(results["method"] == "dense") & (results["test_set"] != "regular") & results["f1"].notna()]
    levels = compare.levels(dense_runs[["run_id", "setting", "language", "test_set", "seed"]], predictions,
                            threshold=compare.NEAR_ZERO_F1)
    p = compare.directions(levels).map(compare.POSITION_NAME).value_counts()
    kept = levels[~levels["collapsed"]]
    rows.append({
        "key": "ogueji-3", "paper": ogueji,
        # the paper adds that encoder pruning recovers them; claim 5 tests pruning against dense
        "claim": f"Dense models score near zero (F1 < {compare.NEAR_ZERO_F1}) on perturbed test sets (the "
                 "robustness headline)",
        "paper's evidence": f"dense perturbed F1 {paper_dense['f1'].min():.3f}-{paper_dense['f1'].max():.3f} in all "
                            f"{len(paper_dense)} (setting, language) cells (median {paper_dense['f1'].median():.3f}); "
                            f"encoder-pruned median {paper_pruned['f1'].median():.3f}",
        "our evidence": (f"{len(levels)} dense (setting, language, perturbed set) cells "
                         f"({'/'.join(map(str, sorted(levels['seeds'].unique())))} seed(s) each), median F1 "
                         f"{levels['f1'].median():.3f}: clearly below {compare.NEAR_ZERO_F1} in "
                         f"{p.get('below', 0)}, clearly above in {p.get('above', 0)}, unclear in {p.get('unclear', 0)}"
                         + (f", collapsed in {p['collapsed']} (left out)" if p.get("collapsed", 0) else ""))
                        if len(levels) else "no runs in this grid",
        "effect": mean_effect(kept["f1"], "dense perturbed F1").text(),
        "verdict": compare.claim_verdict(levels, "lower"),
        "evidence": EVIDENCE["ogueji-3"]})

    # 4. Pruning the embeddings collapses robustness (Figs. 3, 6-8): robustness is the paper's
    # ratio, perturbed over regular F1 (Sec. 4.3), so a model worse everywhere is not "less robust".
    # At every sparsity: Fig. 3's caption finds the drop "consistent across all pruning levels
    # above 0" (its Table 5 is near zero from 50% on), so every sparsity of the grid counts
    rob = analysis.robustness_long(paper)
    multi = rob[rob["setting"] == "multilingual"].groupby(["scope", "sparsity"])["ratio"].median().unstack("scope")
    multi = multi.loc[multi.index > 0]
    absolute = scope_pairs[scope_pairs["test_set"] != "regular"]
    levels = ", ".join(f"{s_:.0%}" for s_ in sorted(scope_ratio["target_sparsity"].unique())) if len(scope_ratio) else ""
    rows.append(_difference_claim(
        "ogueji-4", ogueji, "Pruning the embeddings as well collapses robustness (perturbed over regular F1), at "
        "every sparsity (Fig. 3)", "multilingual median perturbed/regular ratio, partial vs incl_embeddings: "
        + ", ".join(f"{s}%: {r['partial']:.2f} vs {r['incl_embeddings']:.2f}" for s, r in multi.iterrows()),
        scope_ratio, "lower", "incl_embeddings − partial robustness ratio",
        (f" (robustness ratio, incl_embeddings − partial at {levels}, three perturbed sets); absolute perturbed F1, "
         "the secondary view: " + describe(absolute)
         + ("; the collapsed cells are models that lost the task itself, which the rule leaves out although the "
            "claim predicts a loss" if scope_ratio["collapsed"].any() else ""))
        if len(scope_ratio) else " (no run of this grid prunes the embeddings)"))

    # 5. Compression may improve robustness over dense models (abstract), in the claim's own scope
    pert = paper[(paper["test_set"] != "regular") & (paper["scope"] == "partial")]
    wide = pert.pivot_table(index=["setting", "language"], columns="sparsity", values="f1")
    up = wide[50] > wide[0]
    rob50 = rob[(rob["scope"] == "partial")].pivot_table(index=["setting", "language", "test_set"], columns="sparsity",
                                                          values="ratio")
    rob_up = (rob50[50] > rob50[0]).sum() if {0, 50} <= set(rob50.columns) else 0
    chosen = (dense_ratio["scope"] == "partial") & (dense_ratio["sparsity"] == 50)
    absolute = dense_pairs[(dense_pairs["test_set"] != "regular") & (dense_pairs["scope"] == "partial")
                           & (dense_pairs["sparsity"] == 50)]
    rows.append(_difference_claim(
        "ogueji-5", ogueji, "Moderate pruning (50%, encoder only) makes models more robust than dense: a higher "
        "perturbed/regular F1 ratio", f"encoder-only pruning at 50% vs dense: robustness ratio higher in {rob_up} of "
        f"{len(rob50.dropna(subset=[0, 50]) if {0, 50} <= set(rob50.columns) else [])} (setting, language, set) "
        f"cells; absolute perturbed F1 higher in {up.sum()} of {len(up)} (setting, language) cells",
        dense_ratio[chosen], "higher", "pruned − dense robustness ratio",
        "; absolute perturbed F1, the secondary view: " + describe(absolute)))

    # 6. F1 rises with entity overlap (Fig. 9)
    if overlap is None:
        codes = [c for c in sorted(paper["language"].unique()) if c in set(perturb.available_languages())]
        overlap = analysis.corpus_overlap(codes)
    fig9 = paper[(paper["setting"] == "multilingual") & (paper["test_set"] == "regular") & (paper["sparsity"] == 0)
                 & (paper["scope"] == "partial")].merge(overlap, on="language")
    c_paper = analysis.correlation(fig9["unique"], fig9["f1"])
    dense_multi = results[(results["method"] == "dense") & (results["setting"] == "multilingual")
                          & (results["test_set"] == "regular")]
    # one point per language: seeds averaged first, so a language is not counted once per seed
    per_language = dense_multi.groupby("language")[["entity_overlap_unique", "f1"]].mean()
    c_ours = analysis.correlation(per_language["entity_overlap_unique"], per_language["f1"])
    rows.append({
        "key": "ogueji-6", "paper": ogueji,
        "claim": "Languages whose test mentions overlap more with training score higher (Fig. 9)",
        "paper's evidence": f"published dense F1 vs full-corpus overlap, {c_paper['n']} languages: Spearman "
                            f"{c_paper['spearman']:.2f} (p = {c_paper['spearman_p']:.3f}) "
                            f"[{compare.correlation_verdict(c_paper, +1)}]",
        "our evidence": f"dense multilingual run, {c_ours['n']} languages: Spearman {c_ours['spearman']:.2f} "
                        f"(p = {c_ours['spearman_p']:.3f})" if c_ours["n"] >= analysis.MIN_CORRELATION_N
                        else f"{c_ours['n']} languages (a correlation needs at least {analysis.MIN_CORRELATION_N})",
        "effect": spearman_effect(per_language["entity_overlap_unique"], per_language["f1"], "Spearman").text(),
        "verdict": compare.correlation_verdict(c_ours, +1), "evidence": EVIDENCE["ogueji-6"]})

    # 7. The multilingual gain is larger for languages with less data (Sec. 4.1)
    mg = analysis.multilingual_gain(paper)
    c_paper = analysis.correlation(mg["language"].map(lambda c: languages.get(c).paper_train_size), mg["gain"])
    mg_ours = analysis.multilingual_gain(ours).groupby("language", as_index=False)["gain"].mean()
    sizes = results[results["setting"] == "monolingual"].groupby("language")["train_size"].first()
    x_ours = mg_ours["language"].map(sizes)
    c_ours = analysis.correlation(x_ours, mg_ours["gain"])
    rows.append({
        "key": "ogueji-7", "paper": ogueji,
        "claim": "The gain from multilingual fine-tuning is larger for languages with less training data",
        "paper's evidence": f"dense, {c_paper['n']} languages: Spearman {c_paper['spearman']:.2f} "
                            f"(p = {c_paper['spearman_p']:.3f}) [{compare.correlation_verdict(c_paper, -1)}]",
        "our evidence": f"{c_ours['n']} languages trained both ways"
                        + (f": Spearman {c_ours['spearman']:.2f} (p = {c_ours['spearman_p']:.3f})"
                           if c_ours["n"] >= analysis.MIN_CORRELATION_N
                           else f" (a correlation needs at least {analysis.MIN_CORRELATION_N})"),
        "effect": spearman_effect(x_ours, mg_ours["gain"], "Spearman").text(),
        "verdict": compare.correlation_verdict(c_ours, -1), "evidence": EVIDENCE["ogueji-7"]})

    # Li et al. 2022: gradient importance beats L0; one shared subnetwork beats one per language
    li = "Li et al."
    grad_l0 = compare.method_pairs(results, "l0", "grad")
    grad_l0 = compare.cell_intervals(grad_l0[grad_l0["test_set"] == "regular"], predictions) if len(grad_l0) else grad_l0
    rows.append(_difference_claim(
        "li-1", li, "Gradient-importance pruning keeps more F1 than L0 pruning at the same sparsity",
        "XLM-R, WikiANN NER, their Table 1, zero-shot: Grad shared 57.4 and non-shared 53.9 vs L0 non-shared "
        "53.4 (all at 50%) and L0 shared 52.0 (at 20%, the nearest their plain L0 came); translate-train-all: "
        "Grad shared 88.0 and non-shared 86.6 vs L0 non-shared 86.8 (L0 ahead of Grad non-shared there) and shared "
        "85.1", grad_l0, "higher", "grad − l0 F1",
        "" if len(grad_l0) else " (the extended preset has these runs)"))
    sub = compare.subnetwork_pairs(results)
    sub = sub[(sub["test_set"] == "regular") & (sub["method"] == "grad")]  # the claim is gradient pruning's
    sub = compare.cell_intervals(sub, predictions) if len(sub) else sub
    rows.append(_difference_claim(
        "li-2", li, "One subnetwork shared by all languages scores higher than one subnetwork per language "
        "(gradient pruning)", "XLM-R, WikiANN NER at 50%, their Table 1: Grad shared 57.4 vs non-shared 53.9 "
        "zero-shot; 88.0 vs 86.6 translate-train-all", sub, "lower", "non-shared − shared F1",
        "" if len(sub) else " (the extended preset has these runs)"))

    # the verdict first, next to its claim: the evidence columns are long
    table = pd.DataFrame(rows)[["key", "paper", "claim", "verdict", "effect", "paper's evidence", "our evidence",
                                "evidence"]]
    table.index = range(1, len(table) + 1)
    return table


def short(table: pd.DataFrame, link_suffix: str = ".html") -> pd.DataFrame:
    """The introduction's form: claim, verdict, effect and a link to the chapter with the evidence."""
    out = table[["paper", "claim", "verdict", "effect"]].copy()
    out["evidence"] = [f'<a href="{page}{link_suffix}">{page}</a>' for page in table["evidence"]]
    return out
