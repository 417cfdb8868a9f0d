"""The word embeddings' rank pruned with heads and FFN units (Li et al. 2022, Eq. 3; grad, scope
incl_embeddings)."""


import pandas as pd
import pytest
import torch

from polycompress.compress.pruning import GradientPruner, Schedule
from polycompress.compress.pruning.compact import compact, save
from polycompress.compress.pruning.embedding_rank import FactorisedEmbedding, factorise, factorised
from polycompress.compress.pruning.structured import (
    Structure, costs, gradient_importance, pruned_share, rank_costs, select,
)

from test_structured import batches  # the toy batches of the tiny BERT


def fit(model, pruner, data, optimizer, languages: int = 0, penalty: bool = False) -> None:
    """Train ``model`` on ``data`` with ``pruner`` stepping after each optimizer step; with
    ``languages``, batch i goes through language i mod ``languages``'s subnetwork; with
    ``penalty``, the pruner's term joins the loss."""
    for step, batch in enumerate(data):
        if languages:
            pruner.use_group(step % languages)
        loss = model(**batch).loss
        (loss + pruner.penalty() if penalty else loss).backward()
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(step)


def assert_removed_predicts_as_gated(model, structure, ids) -> torch.nn.Module:
    """``structure``'s physically smaller model (rank included) gives the logits ``model`` gives
    as it stands (through whatever gates it holds); the copy it is cut from computes without them.
    Returns the smaller model."""
    import copy

    with torch.no_grad():
        gated = model(input_ids=ids).logits
    plain = copy.deepcopy(model)
    for module in plain.modules():
        module._forward_pre_hooks.clear()
        module._forward_hooks.clear()
    factorised(plain).gate = None
    small = compact(plain, structure).eval()
    assert factorised(small).rank == int(structure.ranks.sum())
    with torch.no_grad():
        assert torch.allclose(gated, small(input_ids=ids).logits, atol=1e-5)
    return small


def test_the_factorised_model_computes_what_the_model_computed(tiny_bert):
    model = tiny_bert.eval()
    ids = batches(1)[0]["input_ids"]
    with torch.no_grad():
        before = model(input_ids=ids).logits
        weight = model.get_input_embeddings().weight.clone()
    emb = factorise(model)
    assert isinstance(model.get_input_embeddings(), FactorisedEmbedding) and factorise(model) is emb  # once
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, before, atol=1e-5)
        assert torch.allclose(emb.weight, weight, atol=1e-5)
    # components come by singular value: the first carries the most of the matrix
    norms = (emb.left.norm(dim=0) * emb.right.norm(dim=1)).detach()
    assert torch.all(norms[:-1] >= norms[1:] - 1e-5)
    rank, total = rank_costs(model)
    assert rank == 120 + 32 and total == 120 * 32 + 32 * 32


def test_one_threshold_over_heads_units_and_rank_meets_the_target(tiny_bert):
    model = tiny_bert.eval()
    factorise(model)
    heads, units, ranks = gradient_importance(model, batches(), ranks=True)
    assert ranks.shape == (32,) and torch.isclose(ranks.norm(), torch.tensor(1.0, dtype=ranks.dtype))
    head, unit, total = costs(model)
    rank, emb_total = rank_costs(model)
    for target in (0.3, 0.6):
        s = select(model, heads, units, target, ranks=ranks)
        assert s.ranks is not None and s.ranks.any()
        assert abs(pruned_share(model, s) - target) <= (head + unit + rank) / (total + emb_total)
    # a structure with ranks cannot be selected without their scores
    with pytest.raises(ValueError, match="rank components"):
        select(model, heads, units, 0.3, Structure.full(model))


def test_grad_with_the_embeddings_prunes_their_rank_and_compacts_exactly(tiny_bert, tmp_path):
    from transformers import AutoModelForTokenClassification

    model = tiny_bert.train()
    pruner = GradientPruner(model, Schedule(start=1, end=5, frequency=2, final=0.6), scope="incl_embeddings",
                            importance_batches=lambda: batches(2))
    assert factorised(model) is not None  # factorised when the pruner is made, before any optimizer
    fit(model, pruner, batches(8, seed=3), torch.optim.AdamW(model.parameters(), lr=1e-2))
    s = pruner.structure
    assert s.ranks is not None and (~s.ranks).any()  # some rank components went
    emb = factorised(model)
    assert (emb.left.detach()[:, ~s.ranks] == 0).all() and (emb.right.detach()[~s.ranks] == 0).all()
    assert pruner.report().achieved >= pruner.current - 1e-9
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    small = assert_removed_predicts_as_gated(model, s, ids)
    folder = save(small, tmp_path / "small")
    loaded = AutoModelForTokenClassification.from_pretrained(folder, trust_remote_code=True).eval()
    assert loaded.config.embedding_rank == int(s.ranks.sum())
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, small(input_ids=ids).logits, atol=1e-6)


@pytest.mark.parametrize("method", ["grad", "l0"])
def test_a_real_run_prunes_the_embedding_rank_with_the_encoder(real_mirror, e5_folder, tmp_path, method):
    import json

    from polycompress.config import RunConfig
    from polycompress.experiment import run

    config = RunConfig(languages=("sw",), setting="monolingual", vocab_languages=("sw",), train_size=64, eval_size=8,
                       epochs=1.0, batch_size=8, max_length=32, learning_rate=2e-4, method=method, sparsity=0.5,
                       scope="incl_embeddings", perturbed=False)
    folder = tmp_path / "runs" / config.run_id
    out = run(config, folder, progress=False, device="cpu", threads=1)
    row = out.rows.iloc[0]
    assert row["embedding_pool"] == "rank" and row["scope"] == "incl_embeddings"
    # the share of the encoder and the factorised embeddings together: within a head, a unit and a rank
    assert abs(row["achieved_sparsity"] - 0.5) < 0.01
    kept = json.loads((folder / "structure.json").read_text())["languages"]["all"]
    assert len(kept["ranks"]) == 384 and 0 < sum(kept["ranks"]) < 384
    report = pd.read_csv(folder / "sparsity.csv").set_index("tensor")
    assert any(name.endswith("word_embeddings.left") for name in report.index)


def test_l0_with_the_embeddings_gates_their_rank_and_leaves_a_plain_masked_model(tiny_bert):
    """L0 with scope incl_embeddings: one hard-concrete gate per rank component beside the heads'
    and units', priced at its parameter cost; the expected sparsity over encoder and factorised
    embeddings reaches the target; freezing folds the rank gates into ``left`` and zeroes the
    closed components, and the compacted model computes what the masked one does."""
    from polycompress.compress.pruning import L0Pruner

    torch.manual_seed(0)
    model = tiny_bert.train()
    data = batches(8, seed=4)
    pruner = L0Pruner(model, Schedule(start=12, end=60, frequency=8, final=0.5), scope="incl_embeddings")
    emb = factorised(model)
    assert emb is not None and pruner.rank_gates.log_alpha.shape == (emb.rank,)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(120):
        loss = model(**data[step % 8]).loss + pruner.penalty()
        loss.backward()
        if step >= 12 and not pruner.frozen:
            assert pruner.rank_gates.log_alpha.grad is not None  # the gates are in the graph and the term
        optimizer.step()
        optimizer.zero_grad()
        pruner.step(step)
    assert pruner.frozen_at is not None
    pruner.finish()
    s = pruner.structure
    head, unit, total = costs(model)
    rank, emb_total = rank_costs(model)
    assert s.ranks is not None and (~s.ranks).any() and s.ranks.any()  # some rank components went, not all
    assert abs(pruner.current - 0.5) <= (head + unit + rank) / (total + emb_total) + 0.01
    assert pruner.current == pytest.approx(pruned_share(model, s))
    assert emb.gate is None and not emb._forward_pre_hooks  # gates folded and gone
    assert (emb.left.detach()[:, ~s.ranks] == 0).all() and (emb.right.detach()[~s.ranks] == 0).all()
    assert any(t.name.endswith("word_embeddings.left") for t in pruner.report().tensors)
    model.eval()
    assert_removed_predicts_as_gated(model, s, batches(1, seed=9)[0]["input_ids"])


def test_a_real_dynamic_run_prunes_the_embedding_rank_at_every_level(real_mirror, e5_folder, tmp_path):
    import json

    from polycompress.config import RunConfig
    from polycompress.experiment import run

    config = RunConfig(languages=("sw",), setting="monolingual", vocab_languages=("sw",), train_size=64, eval_size=8,
                       epochs=1.0, batch_size=8, max_length=32, learning_rate=2e-4, method="grad", sparsity=0.5,
                       scope="incl_embeddings", dynamic=(0.3, 0.5), perturbed=False)
    folder = tmp_path / "runs" / config.run_id
    rows = run(config, folder, progress=False, device="cpu", threads=1).rows
    assert rows["dynamic"].all() and (rows["embedding_pool"] == "rank").all()
    for level in (0.3, 0.5):
        assert abs(rows.loc[rows.target_sparsity == level, "achieved_sparsity"].iloc[0] - level) < 0.01
    levels = json.loads((folder / "structure.json").read_text())["levels"]
    kept = [torch.tensor(levels[str(level)]["ranks"]).bool() for level in (0.3, 0.5)]
    assert len(kept[0]) == 384 and not (kept[1] & ~kept[0]).any() and kept[1].sum() < 384  # nested, pruned


def test_non_shared_grad_gives_each_language_rank_components_of_its_own(tiny_bert):
    """Non-shared grad with the embeddings: each language's structure keeps its own rank
    components, measured through its own subnetwork (its rank gate included), at its target over
    encoder and factors, and that language's removed model computes what its gated one does."""
    from polycompress.compress.pruning.subnetworks import LanguageGradientPruner

    model = tiny_bert.train()
    dev = {"xx": batches(2, seed=11), "yy": batches(2, seed=12)}
    pruner = LanguageGradientPruner(model, Schedule(start=1, end=5, frequency=2, final=0.5), scope="incl_embeddings",
                                    importance_batches=lambda code: dev[code], languages=["xx", "yy"])
    emb = factorised(model)
    assert emb is not None
    fit(model, pruner, batches(8, seed=5), torch.optim.SGD(model.parameters(), lr=0.0), languages=2)  # structures only
    head, unit, total = costs(model)
    rank, emb_total = rank_costs(model)
    for code in ("xx", "yy"):
        s = pruner.structures[code]
        assert s.ranks is not None and (~s.ranks).any()
        assert abs(pruner.achieved(code) - 0.5) <= (head + unit + rank) / (total + emb_total)
    assert not torch.equal(pruner.structures["xx"].ranks, pruner.structures["yy"].ranks)  # their own
    shared = pruner.shared_structure()
    assert torch.equal(shared.ranks, pruner.structures["xx"].ranks | pruner.structures["yy"].ranks)
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    for code in ("xx", "yy"):
        pruner.use(code)
        assert torch.equal(emb.gate.bool(), pruner.structures[code].ranks)
        assert_removed_predicts_as_gated(model, pruner.structures[code], ids)


def test_rank_importance_is_measured_through_a_subnetwork_s_rank_gate(tiny_bert):
    model = tiny_bert.eval()
    emb = factorise(model)
    gate = torch.ones(emb.rank)
    gate[:5] = 0.0
    emb.gate = gate
    _, _, ranks = gradient_importance(model, batches(2), ranks=True)
    assert (ranks[:5] == 0).all() and (ranks[5:] > 0).any()  # what the subnetwork removed gets no gradient
    assert emb.gate is gate  # left as it was


def test_non_shared_l0_gates_each_language_s_rank_and_meets_its_target(tiny_bert):
    """Non-shared L0 with the embeddings: every language has rank gates of its own, priced in its
    expected sparsity (encoder and factors) and part of its diversity vector; fixed structures keep
    ranks, and each language's removed model computes what its gated one does."""
    from polycompress.compress.pruning.l0_subnetworks import LanguageL0Pruner

    torch.manual_seed(0)
    model = tiny_bert.train()
    codes = ["xx", "yy"]
    pruner = LanguageL0Pruner(model, Schedule(start=2, end=30, frequency=4, final=0.5), scope="incl_embeddings",
                              languages=codes, families={"xx": "A", "yy": "B"})
    emb = factorised(model)
    assert emb is not None and pruner.open_probabilities().shape[1] == 2 * 2 + 2 * 64 + emb.rank
    fit(model, pruner, batches(60, seed=5), torch.optim.SGD(model.parameters(), lr=0.0), languages=2, penalty=True)
    pruner.finish()  # the gates only were trained: lr 0 for the weights
    head, unit, total = costs(model)
    rank, emb_total = rank_costs(model)
    for code in codes:
        s = pruner.structures[code]
        assert s.ranks is not None and (~s.ranks).any() and s.ranks.any()
        assert abs(pruner.achieved(code) - 0.5) <= 0.01 + (head + unit + rank) / (total + emb_total), code
    assert pruner.shared_structure().ranks is not None
    model.eval()
    ids = batches(1, seed=9)[0]["input_ids"]
    for code in codes:
        pruner.use(code)
        with torch.no_grad():
            model(input_ids=ids)  # the forward pass draws the language's rank gate
        assert torch.equal(emb.gate.bool(), pruner.structures[code].ranks)
        assert_removed_predicts_as_gated(model, pruner.structures[code], ids)
