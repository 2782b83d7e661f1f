from gateway.etags import TaggedAnswers


def test_an_answer_is_found_under_its_tag_only() -> None:
    answers = TaggedAnswers(max_bytes=100)
    answers.put('"a"', b"first")

    assert answers.get('"a"') == b"first"
    assert answers.get('"b"') is None


def test_the_least_recently_used_answers_go_first_when_the_bytes_run_out() -> None:
    answers = TaggedAnswers(max_bytes=10)
    answers.put('"a"', b"aaaa")
    answers.put('"b"', b"bbbb")
    assert answers.get('"a"') == b"aaaa"  # now the more recently used
    answers.put('"c"', b"cccc")

    assert answers.get('"b"') is None
    assert answers.get('"a"') == b"aaaa"
    assert answers.get('"c"') == b"cccc"


def test_an_answer_larger_than_the_budget_is_not_kept() -> None:
    answers = TaggedAnswers(max_bytes=3)
    answers.put('"a"', b"abcd")

    assert answers.get('"a"') is None
