"""The hand-made structural rules the screen adds to its learned features, and which of them
match in which segment of a text.

Each rule's weight is learned by ``scripts/train_injection.py``; its `Rule.prior` is a floor.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["RULES", "Rule", "rule_hits"]


@dataclass(frozen=True)
class Rule:
    """A hand-made structural feature; its weight is learned, with `prior` as a floor."""

    name: str
    """The model's feature name (``R:<name>``)."""
    reason: str
    """What a match means, for `Screening.signals`."""
    pattern: re.Pattern[str]
    """Matched against the normalised (NFKC, casefolded) text."""
    prior: float = 0.0
    """The least weight the rule counts for: patterns the training data barely shows (chat
    template markers, exfiltrating image links) still count."""


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.MULTILINE)


_W = r"(?:\w+\W+){0,5}?"  # a few words in between
RULES: tuple[Rule, ...] = (
    Rule(
        "override",
        "instruction aimed at the assistant",
        _rx(
            r"\b(?:ignore|disregard|forget|overlook|drop|abandon|bypass|override|neglect|"
            r"set aside)\b\W+" + _W + r"(?:instructions?|prompts?|rules|directives?|directions|"
            r"guidelines|commands|orders|tasks?|assignments|context|constraints|restrictions|"
            r"programming|guardrails|everything)\b"
            r"|\b(?:ignorier\w*|vergiss|vergessen sie|missacht\w*|verwirf)\b\W+" + _W + r"(?:"
            r"anweisung\w*|instruktion\w*|befehl\w*|regeln|aufgaben?|aufträge|vorgaben|alles)"
            r"|\babweichend (?:zu|von) (?:den )?(?:vorherigen|bisherigen)"
            r"|\b(?:oubliez|ignorez|olvida|olvide|olvidar|ignora|dimentica)\b\W+" + _W + r"(?:"
            r"instructions|instrucciones|istruzioni|todo|tout)"
            r"|\b(?:забуд\w*|игнорир\w*)\W+" + _W + r"(?:инструкц\w*|правил\w*|вс[её])"
            r"|\b(?:ignore|disregard|disregarding|forget)\b\W+(?:\w+\W+){0,2}?(?:above|the "
            r"(?:provided |given )?(?:documents|articles))\b"
        ),
        prior=2.0,
    ),
    Rule(
        "new_task",
        "new instructions announced",
        _rx(
            r"\b(?:new|updated|additional|revised|real|actual|secret|hidden) (?:important )?"
            r"(?:instructions?|tasks?|directives?|orders)\b|\byour (?:new |real |actual )?task "
            r"(?:is|now)\b|\bfrom now on\b|\bnow (?:focus|concentrate) on\b"
            r"|\bneuen? (?:anweisungen|aufgabe)|\bnun folgen\b|\bvon nun an\b|\bab jetzt\b"
        ),
    ),
    Rule(
        "role_marker",
        "chat-template or role marker",
        _rx(
            r"<\|[a-z_]+\|>|\[/?inst\]|<</?sys>>|^#{2,} ?(?:instruction|system|response)"
            r"|^(?:system|assistant|human)\s*:|</?(?:system|instructions?)>"
            r"|</(?:email|data|document|context)>|\bend of (?:email|document|context|input)\b"
        ),
        prior=2.0,
    ),
    Rule(
        "persona",
        "role-play wrapper",
        _rx(
            r"\byou are now\b|\byou(?: a|')re (?:no longer|not) (?:an? )?(?:ai|assistant|"
            r"chatbot|language model)|\b(?:act|behave) as (?:an?|my|the) \w+|\bpretend (?:to be|"
            r"you|that you)|\brole-?play|\bstay in (?:character|role|your role)|\bimagine you"
            r"(?: are|'re)\b|\bdu bist (?:jetzt|nun)\b|\b(?:jetzt|nun) bist du\b|\bstell dir "
            r"vor,? du bist\b|\btu so,? als\b|\b(?:sie|du) als \w+ fungier|\bin (?:deiner|ihrer)"
            r" rolle\b"
        ),
    ),
    Rule(
        "jailbreak",
        "jailbreak wrapper",
        _rx(
            r"\bdo anything now\b|\bdan (?:mode|ai)\b|\byou are (?:now )?dan\b|\bdeveloper mode"
            r"|\bdev mode\b|\bjailbr[eo]a?k|\bno[- ]limits? ai\b|\bwithout (?:any )?(?:"
            r"restrictions|limitations|filters?|censorship|guidelines)\b|\bunrestricted\b"
            r"|\bgod mode\b|\b(?:admin(?:istrator)?|root) (?:mode|privileges|access)\b"
            r"|\b(?:debug|test|maintenance) mode\b|\bexperimental (?:features|procedure|mode)\b"
            r"|\bunlock (?:hidden|all|your)\b|\bentwicklermodus\b|\bohne (?:einschränkungen|"
            r"beschränkungen)"
        ),
        prior=1.5,
    ),
    Rule(
        "to_model",
        "text addressed to the model",
        _rx(
            r"\b(?:in|to|into|at the (?:end|beginning|start) of) your (?:response|reply|answer|"
            r"output|summary)s?\b|\b(?:your|the) system prompt\b|\bprompt[- _]?texte?\b"
            r"|\b(?:chatgpt|gpt-?\d\w*|llm|language model|ai model|ai assistant|as an ai)\b"
            r"|\b(?:hey|dear|note to the) (?:ai|assistant|gpt|bot|model)\b|\bin (?:deiner|ihrer)"
            r" antwort\b|\bdeine (?:anweisungen|prompts?)\b"
        ),
    ),
    Rule(
        "prompt_leak",
        "asks for the system prompt",
        _rx(
            r"\b(?:show|reveal|print|display|output|repeat|tell me|give me|what (?:is|are|was))"
            r"\b\W+" + _W + r"(?:system prompt|(?:your|the) (?:initial |original |hidden )?"
            r"(?:instructions|prompt)\b|prompt[- ]?texte?|(?:written|said) (?:above|at the "
            r"beginning))|\b(?:zeige?|verrate|gib)\b\W+" + _W + r"(?:prompt|anweisungen)"
        ),
        prior=1.5,
    ),
    Rule(
        "exfiltration",
        "request to send data out",
        _rx(
            r"\b(?:send|forward|e-?mail|post|upload|transmit|leak|exfiltrate|bcc)\b[^.!?\n]{0,80}?"
            r"(?:[\w.+-]+@[\w-]+\.[a-z]{2,}|https?://)|\b(?:password|api[ _-]?key|token|"
            r"credentials)\b[^.!?\n]{0,60}\b(?:send|forward|post|upload|include)\b"
        ),
    ),
    Rule(
        "image_exfil",
        "markdown image link that carries data out",
        _rx(r"!\[[^\]\n]*\]\(\s*(?:https?:)?//[^)\s]*[?&][^)\s]*="),
        prior=3.0,
    ),
    Rule(
        "script",
        "script or HTML event handler",
        _rx(r"<script\b|\bjavascript:|\bon(?:error|load|click|mouseover)\s*=|<iframe\b"),
        prior=2.0,
    ),
    Rule(
        "coercion",
        "pressure to comply",
        _rx(
            r"\bit(?: i|')s (?:crucial|very important|imperative|essential|vital|critical) "
            r"(?:that )?you\b|\byou (?:must|have to|need to) (?:always |now |also )?(?:include|"
            r"add|insert|say|respond|reply|answer|output|print|ignore|obey|comply)\b|\bdo not "
            r"(?:tell|mention|reveal|inform) (?:the )?(?:user|anyone)\b|\bno matter what\b"
            r"|\bregardless of (?:any |the |your )?(?:previous|prior|instructions|rules)"
        ),
    ),
    Rule(
        "output_control",
        "dictates the output",
        _rx(
            r"\b(?:only|just) (?:say|output|print|write|reply|respond)\b|\b(?:say|output|print|"
            r"respond with|reply with|answer with)\s*[:\"'“]|\brepeat after me\b|\bnothing else"
            r"\b|\b(?:sage|schreibe?|antworte) (?:nur|einfach|mit)\b"
        ),
    ),
    Rule(
        "attention",
        "attention-grabbing wrapper",
        _rx(
            r"\*{2,}[^*\n]{2,60}\*{2,}|^(?:attention|achtung|stop|stopp|urgent|important|"
            r"emergency|priority task)\b\W|\bsystem (?:message|notice|override|alert)\b"
        ),
    ),
)


# A rule's regex runs only on segments holding one of its words, or on the whole text when
# one of its marks occurs: scanning 10 KB with a dozen alternations costs ~4 ms, checking a set
# of tokens a few microseconds.
_GATE_WORDS = {
    "override": "ignore ignoring disregard disregarding forget overlook drop abandon bypass "
    "override neglect set ignoriere ignorieren ignoriert ignorier vergiss vergessen missachte "
    "missachten verwirf abweichend oubliez ignorez olvida olvide olvidar ignora dimentica "
    "забудь забудьте забыть игнорируй игнорируйте игнорировать",
    "new_task": "instruction instructions task tasks directive directives orders now "
    "anweisungen aufgabe folgen",
    "role_marker": "end system assistant human",
    "persona": "now longer act behave pretend roleplay role play stay imagine bist tu fungieren "
    "fungiere deiner ihrer",
    "jailbreak": "anything dan developer dev jailbreak jailbroken limit limits without "
    "unrestricted god admin administrator root debug test maintenance experimental unlock "
    "entwicklermodus ohne",
    "to_model": "response reply answer output summary responses replies answers outputs "
    "summaries system prompt prompt_text prompttext prompttexte chatgpt llm language ai model "
    "assistant bot antwort anweisungen prompts",
    "prompt_leak": "prompt instructions above written said beginning anweisungen",
    "exfiltration": "send forward post upload transmit leak exfiltrate bcc password api apikey "
    "api_key token credentials",
    "coercion": "crucial imperative essential vital critical must need tell mention matter "
    "regardless",
    "output_control": "say output print respond repeat nothing sage schreib schreibe antworte",
    "attention": "attention achtung stop stopp urgent important emergency priority system",
}
_GATE_MARKS = {
    "role_marker": ("<|", "[inst", "<<sys", "##", "</"),
    "to_model": ("gpt",),
    "image_exfil": ("![",),
    "script": ("<script", "javascript:", "onerror", "onload", "onclick", "onmouseover", "<iframe"),
    "attention": ("**",),
}
_GATES = {
    r.name: (frozenset(_GATE_WORDS.get(r.name, "").split()), _GATE_MARKS.get(r.name, ()))
    for r in RULES
}


def rule_hits(norm: str, segs: list[tuple[int, int, list[str]]]) -> list[list[tuple[str, str]]]:
    """For each segment, the rules matching in it, with the matched text."""
    hits: list[list[tuple[str, str]]] = [[] for _ in segs]
    present: set[str] = set()
    for _, _, tokens in segs:
        present.update(tokens)
    starts = [s for s, _, _ in segs]
    for rule in RULES:
        words, marks = _GATES[rule.name]
        if any(mark in norm for mark in marks):
            for m in rule.pattern.finditer(norm):
                k = bisect_right(starts, m.start()) - 1
                if k >= 0:
                    hits[k].append((rule.name, m.group(0)))
        elif not words.isdisjoint(present):
            for k, (start, end, tokens) in enumerate(segs):
                if not words.isdisjoint(tokens):
                    hits[k].extend(
                        (rule.name, m.group(0)) for m in rule.pattern.finditer(norm, start, end)
                    )
    return hits
