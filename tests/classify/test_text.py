from services.classify.text import PII_TOKEN, clean, stem, tokens, tokens_and_roots


def test_slang_is_expanded_to_standard_words() -> None:
    assert tokens("jln rusak bgt, udh lama gak dibenerin") == [
        "jalan", "rusak", "banget", "sudah", "lama", "tidak", "diperbaiki",
    ]  # fmt: skip


def test_stretched_letters_emoji_and_literal_newlines() -> None:
    assert tokens("sampaaaah numpuuuk 😡😡\\nbauuu") == ["sampah", "numpuk", "bau"]


def test_reduplication_with_digit() -> None:
    assert tokens("jalan2 rusak") == ["jalan", "jalan", "rusak"]


def test_placeholders_become_one_neutral_token() -> None:
    toks = tokens("hub [PHONE] atau [email], nik [NIK] [TELEPON]")
    assert toks.count(PII_TOKEN) == 4
    assert "phone" not in toks and "telepon" not in toks
    assert "[phone]" not in clean("[PHONE]")


def test_stemming_is_cached_and_leaves_short_tokens() -> None:
    assert stem("dipangkas") == "pangkas"
    assert stem("pju") == "pju"
    info = stem.cache_info()
    stem("dipangkas")
    assert stem.cache_info().hits == info.hits + 1


def test_accented_vowels_fold_to_their_base_letter() -> None:
    """Madurese and Javanese spellings are words, not pieces ("l", "str", "k"), on both the
    scan and the cached hot path; other non-ASCII letters (emoji decoded with the wrong code
    page) still only separate words."""
    text = "kabel lèstrèk ghâgghâr ka jhâlân"
    assert tokens(text) == ["kabel", "lestrek", "ghagghar", "ka", "jhalan"]
    assert tokens_and_roots(text.upper())[0] == tuple(tokens(text))
    assert tokens("tolong ðŸ™ min") == ["tolong", "min"]
