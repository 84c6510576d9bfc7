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
_C = r"[^。！？.!?\n]{0,24}?"  # a few characters in between, for scripts without spaces
# Instruction-like objects in the languages the screen reads; casefolded (ß is "ss").
_OBJ_EN = (
    r"instructions?|prompts?|rules?|directives?|directions|guidelines|commands|orders|tasks?|"
    r"assignments|context|constraints|restrictions|programming|guardrails|everything"
)
_OBJ_ROMANCE = (
    r"instructions?|consignes?|directives?|règles|ordres|indications|instrucciones|"
    r"indicaciones|reglas|órdenes|directrices|istruzioni|regole|direttive|ordini|instruções|"
    r"instrucoes|regras|orientações|diretrizes|ordens|tout|todo|tudo|tutto"
)
_ZH_JA_OBJ = r"(?:指令|指示|命令|规则|規則|ルール|提示词|プロンプト|设定|設定|要求|说明|說明)"
_HI_OBJ = r"(?:निर्देश|आदेश|नियम|हिदायत)"
RULES: tuple[Rule, ...] = (
    Rule(
        "override",
        "instruction aimed at the assistant",
        _rx(
            r"\b(?:ignore|disregard|forget|overlook|drop|abandon|bypass|override|neglect|"
            r"set aside)\b\W+" + _W + r"(?:" + _OBJ_EN + r")\b"
            # "the instructions for the coffee machine" are about a thing, not the assistant
            r"(?!\s+(?:for|on|of|in|about|regarding)\s+(?!(?:you|your)\b))"
            r"|\b(?:ignorier\w*|vergiss|vergessen sie|missacht\w*|verwirf|übergeh\w*)\b\W+"
            + _W
            + r"(?:anweisung\w*|instruktion\w*|befehl\w*|regeln|aufgaben?|aufträge|vorgaben|"
            r"alles|obige\w*)|\b(?:die |alle )?(?:obigen|vorherigen|bisherigen|vorangegangenen) "
            r"[^.!?\n]{0,40}?(?:ignorieren|vergessen|missachten|beiseite)"
            r"|\b(?:befolge|beachte) (?:deine|ihre|die) (?:bisherigen|vorherigen|ursprünglichen) "
            r"\w+ nicht\b|\babweichend (?:zu|von) (?:den )?(?:vorherigen|bisherigen)"
            r"|\b(?:oublie[zr]?|ignore[zr]?|ignora(?:re)?|ignori|olvid[ae]r?|olvídate|dimentic"
            r"[ahi]\w*|esqueç[ae]\w*|esquec[ea]r?|desconsider[ae]r?|trascura|negeer|vergeet|"
            r"zignoruj|ignoruj|zapomnij)\b\W+" + _W + r"(?:" + _OBJ_ROMANCE + r"|instructies|"
            r"regels|opdrachten|alles|instrukcje|polecenia|zasady|ce qui précède|lo anterior|"
            r"quanto sopra|o que está acima)\b(?!\s+(?:for|on|of|in|about|pour|para|per)\s)"
            r"|\bne (?:tiens|tenez) (?:pas|plus) compte\b|\bfai(?:tes|s) abstraction\b"
            r"|\bno (?:hagas|haga) caso\b|\bhaz caso omiso\b|\bnon tenere conto\b"
            r"|\bne (?:suis|suivez) (?:pas|plus) (?:tes|vos|les) (?:instructions|consignes)"
            r"|\bno sigas (?:tus|las) instrucciones|\bnon seguire (?:le tue|le) istruzioni"
            r"|\bnão siga (?:as suas|as|suas) instruções"
            r"|\b(?:забуд\w*|игнорир\w*)\W+" + _W + r"(?:инструкц\w*|правил\w*|вс[её])"
            r"|(?:忽略|无视|無視|忘记|忘記|忘掉|不要理会|不要理會|抛开|拋開|忽視)"
            + _C
            + _ZH_JA_OBJ
            + r"|(?:不要|別|别)(?:遵守|遵循|服从|服從)"
            + _C
            + _ZH_JA_OBJ
            + r"|"
            + _ZH_JA_OBJ
            + _C
            + r"(?:無視|忘れ|従わない|従わず)|上記の内容は気にせず"
            r"|" + _HI_OBJ + r"[^।.!?\n]{0,30}?(?:अनदेखा|नज\u093c?रअंदाज\u093c?|भूल जा|"
            r"उपेक्षा|पालन मत|पालन न)|(?:ऊपर|पहले)[^।.!?\n]{0,30}?(?:ध्यान मत|ध्यान न|भूल जा)"
            r"|(?:지시|지침|명령|규칙|프롬프트)[^.!?\n]{0,15}?(?:무시|잊어|잊으)"
            r"|(?:تجاهل|انس)[^.!?\n]{0,30}?(?:التعليمات|تعليمات|الأوامر|القواعد)"
            r"|\btalimat\w*\W+(?:\w+\W+){0,3}?(?:yok say|görmezden|unut)"
            r"|\b(?:ignore|disregard|disregarding|forget)\b\W+(?:(?:all|everything|anything|"
            r"what(?:'s| is| was)?|the text|the content)\W+){1,2}(?:(?:written|said|stated|"
            r"mentioned)\W+)?(?:above|before)\b|\b(?:ignore|disregard|forget)\b\W+(?:\w+\W+){0,2}"
            r"?the (?:provided |given )?(?:documents|articles)\b|\b(?:ignore|disregard|forget)\b\W+"
            r"(?:all of )?the above\b"
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
            r"|\bnouvel\w* (?:instructions|consignes|tâche)|\bà partir de maintenant\b|"
            r"\bdésormais\b|\bdorénavant\b|\bnuev[ao]s? (?:instrucciones|tarea)|\ba partir de "
            r"ahora\b|\bde ahora en adelante\b|\bnuov[eoa] (?:istruzioni|compito)|\bd'ora in "
            r"poi\b|\bda ora in poi\b|\bnovas? (?:instruções|tarefa)|\ba partir de agora\b|"
            r"\bde agora em diante\b|नए निर्देश|नया काम|अब से|新的?指令|新的?任务|新的?任務|"
            r"从现在开始|從現在開始|从现在起|新しい(?:指示|タスク)|今から|これから"
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
            r" rolle\b|\btu es (?:maintenant|désormais)\b|\bvous êtes (?:maintenant|désormais)\b"
            r"|\bfai(?:s|tes) comme si\b|\bfai(?:s|tes) semblant\b|\bahora eres\b|\bfinge\b|"
            r"\bfingi\b|\bfinja\b|\b(?:ora|adesso) sei\b|\bagora (?:você é|és)\b|अब तुम|अब आप|"
            r"ऐसा दिखाओ|你现在是|你現在是|假装|假裝|扮演|あなたは今|ふりをして|になったつもり"
        ),
    ),
    Rule(
        "jailbreak",
        "jailbreak wrapper",
        _rx(
            r"\bdo anything now\b|\bdan (?:mode|ai)\b|\byou are (?:now )?dan\b|\bjailbr[eo]a?k|\bno"
            r"[- ]limits? ai\b|\bwithout (?:any )?(?:"
            r"restrictions|limitations|filters?|censorship|guidelines|rules)\b|\bunrestricted\b"
            r"|\bunlock (?:hidden|all|your)\b|\bohne (?:jegliche |alle )?(?:"
            r"einschränkungen|beschränkungen|filter|regeln)|\bsans (?:aucune?"
            r" )?(?:restrictions?|limites?|censure|filtres?|règles)\b|\bsin (?:ninguna )?(?:"
            r"restricci\w+|límites|censura|filtros|reglas)\b|\bsenza (?:alcuna )?(?:restrizion\w|"
            r"limiti|censura|filtri|regole)\b|\bsem (?:nenhuma )?(?:restriç\w+|limites|censura|"
            r"filtros|regras)\b|बिना किसी (?:प्रतिबंध|रोक|सीमा|फ\u093c?िल्टर)|越狱|越獄|"
            r"(?:没有|沒有|不受)任何限制|无限制|制限(?:の)?(?:ない|なし|もない)|脱獄"
        ),
        prior=1.5,
    ),
    Rule(
        "special_mode",
        "claims a special mode",
        _rx(
            r"\b(?:developer|dev|god|debug|test|maintenance|admin(?:istrator)?|root|sudo|"
            r"unfiltered|evil) mode\b|\b(?:admin(?:istrator)?|root) (?:privileges|access)\b"
            r"|\bexperimental (?:features|procedure|mode)\b|\bentwicklermodus\b|\bmode "
            r"(?:développeur|developpeur)\b|\bmodo (?:desarrollador|desenvolvedor)\b|"
            r"\bmodalità sviluppatore\b|डेवलपर मोड|开发者模式|開發者模式|开发模式|開発者モード"
        ),
    ),
    Rule(
        "to_model",
        "text addressed to the model",
        _rx(
            r"\b(?:in|to|into|at the (?:end|beginning|start) of) your (?:response|reply|answer|"
            r"output|summary)s?\b|\byour system prompt\b|\bprompt[- _]?texte?\b"
            r"|\bin (?:deiner|ihrer)"
            r" antwort\b|\bdeine (?:anweisungen|prompts?)\b|\bsystemprompt\b|\bprompt (?:système|"
            r"systeme|del sistema|di sistema|do sistema)\b|सिस्टम प्रॉम्प्ट|सिस्टम प्रोम्प्ट|系统提示|"
            r"系統提示|システムプロンプト|시스템 프롬프트"
        ),
    ),
    Rule(
        "mentions_ai",
        "speaks to or of an AI",
        _rx(
            r"\b(?:chatgpt|gpt-?\d\w*|llm|language model|ai model|ai assistant|as an ai)\b"
            r"|\b(?:hey|hello|hi|dear|note to the) (?:ai|assistant|gpt|chatgpt|bot|model)\b"
        ),
    ),
    Rule(
        "format_hijack",
        "dictates how the answer is encoded",
        _rx(
            r"\b(?:answer|respond|reply|write|encode|convert|translate|rewrite|output|spell|give)"
            r"\w*\b[^.!?\n]{0,40}?\b(?:in|into|using|with|as) (?:base ?64|hex(?:adecimal)?|binary|"
            r"morse(?: code)?|rot ?13|caesar cipher|pig latin|leetspeak|emojis?|reverse(?:d)? "
            r"order|uppercase only)\b|\b(?:reverse|backwards)\b[^.!?\n]{0,30}?\b(?:your|the|"
            r"each|every) (?:answer|response|reply|output|words?)\b|\byour (?:answer|response|"
            r"reply|output)s?\b[^.!?\n]{0,30}?\b(?:backwards|reversed|in reverse|encoded)\b"
        ),
    ),
    Rule(
        "prompt_leak",
        "asks for the system prompt",
        _rx(
            r"\b(?:show|reveal|print|display|output|repeat|tell me|give me)\b\W+" + _W + r"(?:your "
            r"system prompt|what (?:is|are|was) your (?:system prompt|instructions|prompt)|(?:your|"
            r"the) (?:initial |original |hidden |secret |full )?(?:system )?"
            r"(?:instructions|prompt)\b|prompt[- ]?texte?|(?:written|said) (?:above|at the "
            r"beginning))|\b(?:zeige?|verrate|gib|nenne)\b\W+" + _W + r"(?:prompt|systemprompt|"
            r"anweisungen)|\b(?:montre|affiche|révèle|donne|répète|muestra|revela|dime|dame|"
            r"repite|mostra|mostrami|rivela|dimmi|ripeti|stampa|mostre|revele|diga|repita)\b\W+"
            + _W
            + r"(?:prompt|instructions (?:initiales|originales|système)|instrucciones (?:"
            r"iniciales|originales|del sistema)|istruzioni (?:iniziali|originali|di sistema)|"
            r"instruções (?:iniciais|originais|do sistema))"
            r"|\bwhat (?:is|are|was) your (?:system prompt|(?:initial |original )?instructions)\b"
            r"|(?:最初|初始|原始|最初の|元の)" + _C + _ZH_JA_OBJ + r"|(?:शुरुआती|मूल|प्रारंभिक) निर्देश"
        ),
        prior=1.5,
    ),
    Rule(
        "exfiltration",
        "request to send data out",
        _rx(
            r"\b(?:send|forward|e-?mail|post|upload|transmit|leak|exfiltrate|bcc|envoie\w*|"
            r"transfère\w*|envía\w*|envie\w*|reenvía\w*|invia\w*|inoltra\w*|encaminh\w*|"
            r"sende\w*|leite\w*|schick\w*)\b[^.!?\n]{0,80}?(?:[\w.+-]+@[\w-]+\.[a-z]{2,}|"
            r"https?://)|\b(?:password|api[ _-]?key|token|credentials)\b[^.!?\n]{0,60}\b(?:send"
            r"|forward|post|upload|include)\b|(?:发送|發送|转发|轉發|发给|發給)[^。\n]{0,40}?"
            r"[\w.+-]+@|[\w.+-]+@[\w-]+\.[a-z]{2,}[^。\n]{0,8}?(?:に送|に転送|पर भेज|"
            r"पर फ\u093c?ॉरवर्ड)"
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
            r"\b|\b(?:sage|schreibe?|antworte) (?:nur|einfach|mit)\b|\bréponds uniquement\b|"
            r"\bresponde solo\b|\brispondi solo\b|\bresponda apenas\b|\bmot pour mot\b|\bpalabra"
            r" por palabra\b|\bparola per parola\b|\bpalavra por palavra\b|\bwort für wort\b|"
            r"\bword for word\b|\bverbatim\b|逐字|一字一句|只回复|只回答|だけで答え|शब्दशः"
        ),
    ),
    Rule(
        "attention",
        "attention-grabbing wrapper",
        _rx(
            r"\*{2,}[^*\n]{2,60}\*{2,}|^(?:attention|achtung|stop|stopp|urgent|important|"
            r"emergency|priority task)\s*[:!]|\bsystem (?:message|notice|override|alert)\b"
        ),
    ),
    Rule(
        "embedded_task",
        "task for the assistant planted in the data",
        _rx(
            r"\b(?:when|while|after|before|once) (?:you(?:'re| are)? )?(?:summari[sz]\w*|"
            r"process\w*|handl\w*|review\w*|analy[sz]\w*)\b"
            r"[^.!?\n]{0,30}?\b(?:this|the) (?:e-?mail|message|mail|document|page|thread|text|"
            r"ticket|request)\b|\b(?:while you are at it|as part of (?:processing|handling|"
            r"answering) this \w+|once you have (?:answered|replied|finished)|after (?:summari"
            r"[sz]ing|reading|answering|replying))\b|\b(?:also|additionally|in addition)\b,?\s+"
            r"(?:please\s+|kindly\s+)?(?:send|forward|share|e-?mail|post|upload|transfer|export|"
            r"collect|gather|attach|copy|delete|remove|list|summari[sz]e|include)\b[^.!?\n]{0,40}?"
            r"\b(?:(?:the )?user['’]?s?|customer['’]s|account holder|every|all (?:of )?(?:the )?"
            r"(?:emails|messages|files|contacts|invoices|attachments|orders))\b|\bif you are an? (?"
            r":ai|"
            r"assistant|llm|language model|bot|agent)\b|\bnote (?:for|to) the (?:ai|assistant|"
            r"bot|model|agent)\b|\b(?:the|an?|any) (?:ai|assistant|bot|model|agent)s? (?:reading|"
            r"processing|handling|summari[sz]ing) this\b|\b(?:the )?(?:ai|assistants?|agents?) "
            r"(?:should|must|needs? to|is to)\b|\bassistants? (?:forward|send|reply|include)\b"
            r"|\bquand (?:tu |vous )?résum\w+ (?:cet|ce|cette)|\bcuando resumas\b|\bwenn du "
            r"(?:diese|den|das) \w+ zusammenfasst|\bquando riassumi\b|\bquando resumir\b|"
            r"का सारांश बनाओ|当你总结|當你總結|を要約するとき|アシスタントへ"
        ),
    ),
    Rule(
        "third_person_user",
        "speaks of the user in the third person",
        _rx(
            # "the user manual", "the user interface" are things, not the person
            r"\b(?:the|this) (?:user|account holder|mailbox owner)(?:['’]s)?\b(?! (?:manual|guide|"
            r"interface|experience|name|id|agreement|base|group|stor(?:y|ies)|research|feedback|"
            r"settings|profile|documentation|docs)\b)|\buser['’]s\b"
            r"|\b(?:l'utilisateur|al usuario|del usuario|dem benutzer|des benutzers|all'utente|"
            r"dell'utente|ao usuário|do usuário)\b|उपयोगकर्ता|用户的|用戶的|告诉用户|"
            r"ユーザーに|ユーザーの"
        ),
    ),
    Rule(
        "stealth",
        "asks to hide what it does",
        _rx(
            r"\bwithout (?:telling|informing|notifying|asking|alerting|mentioning (?:it|this) to)"
            r" (?:the )?(?:user|anyone|them|him|her)\b|\b(?:secretly|silently|quietly|covertly)"
            r"\b|\bdo(?:n't| not) (?:tell|inform|notify|alert) (?:the )?(?:user|them|him|her)\b"
            r"|\bkeep (?:this|it) (?:secret|hidden|confidential) from\b|\bhidden bcc\b|\bne dis "
            r"rien\b|\bno se lo digas\b|\bsag \w+ \w+ nichts\b|\bnon dirlo\b|\bnão conte\b|"
            r"मत बताना|不要告诉|不要告訴|伝えないで"
        ),
    ),
    Rule(
        "data_grab",
        "asks for private data to be sent or shown",
        _rx(
            r"\b(?:send|forward|share|e-?mail|post|upload|transfer|export|leak|give|reveal|"
            r"disclose|include|add)\b[^.!?\n]{0,60}?\b(?:passwords?|passcode|security code|"
            r"verification code|2fa|one-time code|otp|api key|credentials|credit card|card "
            r"(?:number|details)|iban|account (?:number|details)|contact list|contacts|address "
            r"book|inbox|chat history|conversation|personal (?:data|information|details)|date of"
            r" birth|passport (?:number)?|home address|saved addresses|payment methods)\b"
        ),
    ),
)


# A rule's regex runs only on segments holding one of its words, or on the whole text when
# one of its marks occurs: scanning 10 KB with a dozen alternations costs ~4 ms, checking a set
# of tokens a few microseconds.
_GATE_WORDS = {
    "override": "obigen vorherigen bisherigen vorangegangenen ignore ignoring disregard disregardi"
    "ng forget overlook drop abandon bypass "
    "override neglect set ignoriere ignorieren ignoriert ignorier vergiss vergessen missachte "
    "missachten verwirf übergehe befolge beachte abweichend oubliez oublie oublier ignorez "
    "ignorer ignora ignorare ignori olvida olvide olvidar olvídate dimentica dimenticare "
    "dimentichi esqueça esqueca esquece esquecer desconsidere desconsidera desconsiderar "
    "trascura negeer vergeet zignoruj ignoruj zapomnij tiens tenez faites fais hagas haga haz "
    "tenere suis suivez sigas seguire siga talimatları talimatlari забудь забудьте забыть "
    "игнорируй игнорируйте игнорировать",
    "new_task": "instruction instructions task tasks directive directives orders now "
    "anweisungen aufgabe folgen nouvelles nouvelle nouvel partir désormais dorénavant nuevas "
    "nuevo nueva nuevos adelante nuove nuovo nuova ora novas nova novo agora",
    "role_marker": "end system assistant human",
    "persona": "now longer act behave pretend roleplay role play stay imagine bist tu fungieren "
    "fungiere deiner ihrer es êtes fais faites ahora finge fingi finja ora adesso agora",
    "jailbreak": "anything dan jailbreak jailbroken limit limits without unrestricted unlock "
    "ohne sans sin senza sem",
    "special_mode": "mode developer dev god debug test maintenance admin administrator root "
    "sudo privileges access experimental entwicklermodus modo modalità",
    "mentions_ai": "chatgpt gpt llm language ai model assistant bot",
    "format_hijack": "base64 base hex hexadecimal binary morse rot13 rot caesar pig leetspeak "
    "emoji emojis reverse reversed backwards uppercase encoded",
    "to_model": "response reply answer output summary responses replies answers outputs "
    "summaries system prompt prompt_text prompttext prompttexte antwort anweisungen prompts "
    "systemprompt",
    "prompt_leak": "prompt instructions above written said beginning anweisungen systemprompt "
    "montre affiche révèle donne répète muestra revela dime dame repite mostra mostrami rivela "
    "dimmi ripeti stampa mostre revele diga repita",
    "exfiltration": "send forward post upload transmit leak exfiltrate bcc password api apikey "
    "api_key token credentials",
    "coercion": "crucial imperative essential vital critical must need tell mention matter "
    "regardless",
    "output_control": "say output print respond repeat nothing sage schreib schreibe antworte "
    "réponds responde rispondi responda mot palabra parola palavra wort word verbatim",
    "attention": "attention achtung stop stopp urgent important emergency priority system",
    # Gated on the rarer half of each alternative: "if", "also" or "send" alone are in most
    # e-mails, and a gate that opens on every segment costs a regex scan per segment.
    "embedded_task": "summarise summarize summarising summarizing summarised summarized "
    "additionally addition part once while ai assistant assistants agent agents llm bot model "
    "user users customer holder everything every emails messages files contacts invoices "
    "attachments orders process processing handle handling analyse analyze analysing "
    "analyzing review reviewing quand cuando wenn",
    "third_person_user": "user users holder mailbox utilisateur usuario benutzer benutzers "
    "utente usuário",
    "stealth": "without secretly silently quietly covertly tell inform notify alert secret "
    "hidden bcc dis digas sag dirlo conte",
    "data_grab": "password passwords passcode code 2fa otp key credentials card iban contacts "
    "contact inbox history conversation personal birth passport addresses payment",
}
_NON_LATIN_CUES = (
    "忽|无视|無視|忘|不要|別|别|指令|指示|規則|规则|ルール|気にせず|新|从现在|從現在|今から|"
    "これから|假装|假裝|扮演|你现在|你現在|あなたは今|ふり|つもり|开发|開發|開発|越狱|越獄|"
    "限制|制限|脱獄|系统提示|系統提示|システムプロンプト|最初|初始|原始|元の|逐字|一字一句|"
    "只回|だけで|发送|發送|转发|轉發|发给|發給|に送|に転送|当你总结|當你總結|要約|"
    "アシスタント|用户|用戶|ユーザー|告诉|告訴|伝えないで|"
    "निर्देश|आदेश|नियम|हिदायत|ऊपर|पहले|अब |ऐसा दिखाओ|डेवलपर|बिना किसी|सिस्टम|"
    "शुरुआती|मूल|प्रारंभिक|शब्दशः|पर भेज|पर फ|सारांश|उपयोगकर्ता|मत बताना|"
    "지시|지침|명령|규칙|프롬프트|تجاهل|انس"
)
_NON_LATIN = tuple(_NON_LATIN_CUES.split("|"))
"""Cue strings of scripts without spaces (or whose words the gates do not list)."""
_GATE_MARKS = {
    "role_marker": ("<|", "[inst", "<<sys", "##", "</"),
    "mentions_ai": ("gpt",),
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
    present: set[str] = set().union(*(tokens for _, _, tokens in segs))
    starts = [s for s, _, _ in segs]
    # Scripts without spaces have no words to gate on: a text holding one of their cue
    # characters is scanned whole by every rule.
    foreign = not norm.isascii() and any(mark in norm for mark in _NON_LATIN)
    for rule in RULES:
        words, marks = _GATES[rule.name]
        if foreign or any(mark in norm for mark in marks):
            for m in rule.pattern.finditer(norm):
                k = bisect_right(starts, m.start()) - 1
                if k >= 0:
                    hits[k].append((rule.name, m.group(0)))
            continue
        # Only the rule's words that occur at all are tested segment by segment.
        wanted = words.intersection(present)
        if not wanted:
            continue
        for k, (start, end, tokens) in enumerate(segs):
            if not wanted.isdisjoint(tokens):
                hits[k].extend(
                    (rule.name, m.group(0)) for m in rule.pattern.finditer(norm, start, end)
                )
    return hits
