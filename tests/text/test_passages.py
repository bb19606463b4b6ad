from jdl.text import masked_word_questions, split_passages
from jdl.text.passages import MASK


TEXT = ("Assignment statements are used to rebind names to values and to modify attributes.\n"
        "An assignment statement evaluates the expression list and assigns the single resulting "
        "object to each of the target lists, from left to right.\n") * 3


def test_passages_cover_the_text_in_order_and_cut_at_newlines():
    bounds = split_passages(TEXT, 120)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(TEXT)
    assert all(a1 == b0 for (_, b0), (a1, _) in zip(bounds, bounds[1:]))
    assert all(0 < b - a <= 120 for a, b in bounds)
    assert TEXT[bounds[0][1] - 1] == "\n"  # the first passage ends at the first line's newline
    assert "".join(TEXT[a:b] for a, b in bounds) == TEXT


def test_questions_mask_one_whole_word_of_their_passage():
    passages = [TEXT[a:b] for a, b in split_passages(TEXT, 120)]
    qs = masked_word_questions(passages, range(len(passages)), seed=0, prefix_chars=20, suffix_chars=10)
    assert len(qs) == len(passages)
    for q in qs:
        text = passages[q.passage]
        assert q.prefix + q.answer + q.suffix in text and len(q.prefix) == 20
        assert q.answer.isalpha() and 5 <= len(q.answer) <= 12
        assert q.query == q.prefix + MASK + q.suffix
        start = text.index(q.prefix + q.answer + q.suffix) + 20
        assert not text[start - 1].isalpha() and not text[start + len(q.answer)].isalpha()
    assert masked_word_questions(passages, range(len(passages)), seed=0, prefix_chars=20,
                                 suffix_chars=10) == qs  # seeded


def test_unseen_questions_drop_those_whose_window_is_in_a_training_passage():
    from jdl.text import unseen_questions

    passages = [TEXT[a:b] for a, b in split_passages(TEXT, 120)]  # TEXT is one paragraph, three times
    train, test = range(0, 3), range(3, len(passages))
    qs = masked_word_questions(passages, test, seed=1, prefix_chars=20, suffix_chars=10)
    assert unseen_questions(qs, passages, train) == []  # every test window is repeated in training
    fresh = passages + ["A wholly different passage about lambda expressions and their closures."]
    q_new = masked_word_questions(fresh, [len(passages)], seed=0, prefix_chars=20, suffix_chars=10)
    assert unseen_questions(qs + q_new, fresh, train) == q_new
    assert all(q.prefix + q.answer not in fresh[i] for q in q_new for i in train)
