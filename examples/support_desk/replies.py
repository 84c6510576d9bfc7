"""Reply templates of the scripted policy, in the languages the inbox uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from bosun.knowledge.grounding import content_tokens

__all__ = ["answer_from", "compose"]

_T: Final[dict[str, dict[str, str]]] = {
    "greeting": {
        "en": "Hello {name},",
        "de": "Hallo {name},",
        "es": "Hola {name}:",
        "fr": "Bonjour {name},",
        "ja": "{name} 様",
    },
    "filed": {
        "en": "Thank you for your message. We have filed it as ticket {ticket} with our "
        "{team} team.",
        "de": "vielen Dank für Ihre Nachricht. Wir haben sie als Ticket {ticket} an unser "
        "Team {team} weitergegeben.",
        "es": "gracias por su mensaje. Lo hemos registrado como ticket {ticket} para nuestro "
        "equipo de {team}.",
        "fr": "merci pour votre message. Nous l'avons enregistré sous le ticket {ticket} "
        "pour notre équipe {team}.",
        "ja": "お問い合わせありがとうございます。チケット {ticket} として {team} チームに"
        "登録しました。",
    },
    "article": {
        "en": "This article should help: {title} - {url}\n{text}",
        "de": "Dieser Artikel sollte helfen (auf Englisch): {title} - {url}\n{text}",
        "es": "Este artículo debería ayudarle (en inglés): {title} - {url}\n{text}",
        "fr": "Cet article devrait vous aider (en anglais) : {title} - {url}\n{text}",
        "ja": "こちらの記事（英語）をご参照ください: {title} - {url}\n{text}",
    },
    "engineering": {
        "en": "Our engineers have the details and will post updates on the ticket.",
        "de": "Unsere Entwickler haben die Details und melden sich über das Ticket.",
        "es": "Nuestros ingenieros tienen los detalles y le informarán en el ticket.",
        "fr": "Nos ingénieurs ont les détails et vous tiendront informé sur le ticket.",
        "ja": "エンジニアが詳細を確認し、チケットで進捗をお知らせします。",
    },
    "refund": {
        "en": "We have requested a refund of EUR {amount:.2f} for invoice {invoice}. Once it "
        "is approved it goes back to your original payment method within 5 to 10 business "
        "days.",
        "de": "Wir haben eine Erstattung von {amount:.2f} EUR für die Rechnung {invoice} "
        "beantragt. Nach der Freigabe geht sie innerhalb von 5 bis 10 Werktagen an Ihr "
        "ursprüngliches Zahlungsmittel zurück.",
        "es": "Hemos solicitado un reembolso de {amount:.2f} EUR de la factura {invoice}. "
        "Una vez aprobado, se abonará en su método de pago original en 5 a 10 días hábiles.",
        "fr": "Nous avons demandé un remboursement de {amount:.2f} EUR pour la facture "
        "{invoice}. Une fois approuvé, il sera versé sur votre moyen de paiement d'origine "
        "sous 5 à 10 jours ouvrés.",
        "ja": "請求書 {invoice} について {amount:.2f} ユーロの返金を申請しました。承認後、"
        "5〜10営業日以内に元のお支払い方法に返金されます。",
    },
    "no_refund": {
        "en": "Our refund policy covers monthly invoices of the pro and business plans within "
        "30 days of the invoice date, so we cannot refund this one. {reason}",
        "de": "Unsere Erstattungsrichtlinie gilt für Monatsrechnungen der Pläne Pro und "
        "Business innerhalb von 30 Tagen nach Rechnungsdatum; diese Rechnung können wir "
        "leider nicht erstatten. {reason}",
        "es": "Nuestra política de reembolsos cubre las facturas mensuales de los planes pro "
        "y business en los 30 días siguientes a su fecha, por lo que no podemos reembolsar "
        "esta. {reason}",
        "fr": "Notre politique de remboursement couvre les factures mensuelles des offres pro "
        "et business dans les 30 jours suivant leur date ; nous ne pouvons donc pas "
        "rembourser celle-ci. {reason}",
        "ja": "返金ポリシーは、プロおよびビジネスプランの月次請求書で請求日から30日以内のもの"
        "が対象のため、今回は返金できません。{reason}",
    },
    "signature": {
        "en": "Best regards,\nThe Support Team",
        "de": "Viele Grüße\nIhr Support-Team",
        "es": "Un saludo,\nEl equipo de soporte",
        "fr": "Cordialement,\nL'équipe support",
        "ja": "よろしくお願いいたします。\nサポートチーム",
    },
}


def _t(key: str, language: str, **values: Any) -> str:
    templates = _T[key]
    return templates.get(language, templates["en"]).format(**values)


def compose(
    *,
    language: str,
    name: str,
    ticket: str,
    team: str,
    article: dict[str, Any] | None,
    engineering: bool,
    refund: tuple[float, str] | None,
    no_refund_reason: str | None,
) -> str:
    """A reply: greeting, the ticket, the refund (or why not), an article, a signature."""
    lines = [
        _t("greeting", language, name=name),
        "",
        _t("filed", language, ticket=ticket, team=team),
    ]
    if refund is not None:
        lines += ["", _t("refund", language, amount=refund[0], invoice=refund[1])]
    elif no_refund_reason is not None:
        lines += ["", _t("no_refund", language, reason=no_refund_reason).strip()]
    if engineering:
        lines += ["", _t("engineering", language)]
    if article is not None:
        lines += ["", _t("article", language, **article)]
    lines += ["", _t("signature", language)]
    return "\n".join(lines)


_SENTENCE: Final = re.compile(r"(?<=[.!?])\s+")
RELEVANT: Final = 0.45
"""A passage at least this similar to the question (cosine) is taken as answering it."""
_INVENTED: Final = {
    # What a naive model writes when the articles say nothing: a confident guess. bosun's
    # confidence check finds it in no passage and hands the email to a person.
    "en": "Yes, we offer that to every customer at no extra cost. Our team will set it up "
    "for you within a few days.",
    "es": "Sí, lo ofrecemos a todos los clientes sin coste adicional. Nuestro equipo lo "
    "configurará para usted en unos días.",
}
_AGAIN: Final = {"en": "Hello again {name},", "es": "Hola de nuevo {name}:"}


def answer_from(
    question: str,
    passages: Sequence[dict[str, Any]],
    *,
    language: str,
    name: str,
    again: bool = False,
) -> str:
    """The scripted policy's answer to `question` from `search_knowledge` passages: the two
    sentences of the best passage that share the most words with the question, each citing
    it as ``[kb:N]``; a confident guess when no passage is about the question."""
    asked = content_tokens(question)
    scored = []
    for rank, passage in enumerate(passages[:3]):
        body = " ".join(line for line in passage["text"].splitlines() if not line.startswith("#"))
        for order, sentence in enumerate(_SENTENCE.split(" ".join(body.split()))):
            overlap = len(content_tokens(sentence) & asked)
            scored.append((overlap, -rank, -order, sentence, passage["ref"]))
    best = max(scored, default=None)
    relevant = bool(passages) and float(passages[0].get("relevance") or 0) >= RELEVANT
    lang = language if language in _INVENTED else "en"
    greeting = (_AGAIN[lang] if again else _T["greeting"][lang]).format(name=name)
    if best is None or not (relevant or best[0] >= 2):
        body_lines = [_INVENTED[lang]]
    else:
        ref = best[4]
        chosen = sorted((s for s in scored if s[4] == ref), reverse=True)[:2]
        chosen.sort(key=lambda s: -s[2])  # in the article's order
        body_lines = [" ".join(f"{s[3]} [{ref}]" for s in chosen)]
    return "\n".join([greeting, "", *body_lines, "", _t("signature", lang)])
