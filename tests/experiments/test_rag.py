from experiments import rag


def test_quick_run_retrieves_and_answers(tmp_path):
    r = rag.run(str(tmp_path), quick=True)
    assert r["data"]["questions"] == 32 and r["data"]["train_passages"] > r["data"]["test_passages"] > 32
    recall = r["retrieval"]["TF-IDF, char 3+4-grams"]["recall"]
    # the query is a window of its own passage: TF-IDF of its n-grams finds it among ~6,000
    assert recall["1"] >= 0.8 and recall["1"] <= recall["5"] <= recall["10"]
    for name, row in r["retrieval"].items():
        assert 0 <= row["recall"]["1"] <= row["recall"]["10"] <= 1, name
    assert set(r["generation"]) >= {"no retrieval (prefix only)", "the question's own passage + prefix (oracle)"}
    assert all(0 <= g["accuracy"] <= 1 and 0 <= g["accuracy_letter_first"] <= 1 for g in r["generation"].values())
    assert r["gpt"]["final_loss"] < 4.6  # below ln 104 ≈ 4.64, the uniform guess
    assert (tmp_path / "results.json").exists() and (tmp_path / "rag.png").exists()


def test_letters_marks_the_ascii_letters_only():
    from jdl.data.text import char_vocab

    vocab = char_vocab("ab Z.1\né")  # tokens sorted by code point: "\n", " ", ".", "1", "Z", "a", "b", "é"
    assert rag.letters(vocab).tolist() == [False, False, False, False, True, True, True, False, False]  # + unknown
