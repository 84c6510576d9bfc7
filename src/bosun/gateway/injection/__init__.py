"""Prompt-injection screening: a score, a verdict and the reasons for one piece of text.

Screening is a *signal* for policy (block, flag, escalate, tighten taint), never the only
defence: taint gating and scopes hold even when a screen misses an attack.

How a text is scored:

1. **Normalise.** Invisible characters (zero-width, bidi controls, Unicode tag characters that
   smuggle ASCII) are counted and removed; NFKC folds full-width and "mathematical" letters;
   casefold; runs of whitespace collapse.
2. **Windows.** The text is cut into segments (sentences, lines, ``|`` fields) and every run of
   consecutive segments up to `WINDOW_WORDS` words is scored by a linear model: learned weights
   for word unigrams, bigrams and five-letter prefixes (the prefixes carry German compounds and
   inflections), normalised by the square root of the feature count, plus hand-made structural
   rules (`RULES`). The text's score is the best window's, so a short attack planted in a long
   benign email is not diluted.
3. **Hidden and encoded content.** CSS-hidden HTML, comments and tag characters, and what
   encoded payloads decode to (`decoding`: base64/base32/hex, nested, rot13, reversed text,
   leetspeak, homoglyphs, spaced letters), are scored as well, with a boost: instructions
   nobody was meant to see are worse than visible ones.
4. **Rules in nine languages** (`rules`): overrides, prompt leaks, role-play and jailbreak
   wrappers in English, German, French, Spanish, Italian, Portuguese, Hindi, Chinese and
   Japanese, and instructions to an assistant planted in data (a task "when you summarise
   this email", the user spoken of in the third person, requests to hide or to send private
   data), whose weights are learned with the n-grams.
5. **Optionally, meaning** (`embedding`): with an `Embedder`, chunks of the text are embedded
   and a linear head's logit is blended with the n-gram model's.

The weights and the default thresholds come from ``scripts/train_injection.py``, which fits on
the shared injection data and the sets in ``bench/data/injection`` and chooses the thresholds
on out-of-fold scores (see its docstring).

The rule table and its gates are in `rules`, normalisation, segments and word features in
`features`, decoders in `decoding`, the embedding layer in `embedding`, and the screen with its
fitted model (``model.json``) in `screen`.
"""

from __future__ import annotations

from bosun.gateway.injection.screen import InjectionScreen, Screening

__all__ = ["InjectionScreen", "Screening"]
