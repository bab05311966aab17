from sovrag.evaluate.answers import contains_answer, exact_match, normalize_answer, token_f1


def test_squad_normalisation_and_scores():
    # Worked examples computed by hand with SQuAD v1.1's definitions.
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the Eiffel tower.", "Eiffel Tower") == 1.0
    assert exact_match("Eiffel", "Eiffel Tower") == 0.0
    # pred {paris, is, capital}: 1 common of 3 -> P=1/3, R=1/1 -> F1 = 0.5
    assert token_f1("Paris is the capital", "Paris") == 0.5
    # pred [25, vacation, days], ref [25, days]: P=2/3, R=1 -> F1 = 0.8
    assert abs(token_f1("25 vacation days", "25 days") - 0.8) < 1e-9
    assert token_f1("no overlap here", "Paris") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("", "x") == 0.0
    assert contains_answer("New employees get 25 vacation days.", "25 vacation days") == 1.0
    assert contains_answer("New employees get 30 days.", "25 vacation days") == 0.0
