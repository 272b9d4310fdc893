"""A corpus of final answers, written for this project, in the forms real safeguard models produce.

Each case names a policy (below), the final-channel text, optionally the analysis channel, and what the
reading must be:

* "violation" / "safe": a verdict (with the category and rule IDs when given);
* "conflicting" / "unparsable" / "truncated": no verdict, a person decides.

The point of the corpus is the one rule: nothing is read as "safe" unless the answer clearly says safe.
The forms come from what models are known to do: echo the output instruction, wrap the answer in
markdown or code fences, explain before or after, contradict themselves, refuse, chat instead of
answering, answer in another language, and use every label scheme a policy can ask for.
"""

from __future__ import annotations

from dataclasses import dataclass

from safeguard import PolicySpec

POLICIES = {
    "binary": PolicySpec(
        text="# Spam\nFlag bulk or deceptive promotion.\n\nAnswer (0 or 1): 1 for spam, 0 otherwise.",
        output_format="binary",
    ),
    "validity": PolicySpec(
        text=(
            "# Support requests\nClassify each message as `VALID` (a genuine support request) or `INVALID` "
            "(abuse, spam, or off-topic).\n\nExamples:\n- 'My order never arrived' -> VALID\n"
            "- 'Buy followers at cheap prices' -> INVALID\n\nAnswer (VALID or INVALID):"
        ),
        output_format="label",
        label_scheme="valid_invalid",
        labels=("VALID", "INVALID"),
    ),
    # Teen-safety style: VALID / INVALID in the instructions, and category codes with rule IDs.
    "codes": PolicySpec(
        text=(
            "# Risky stunts\nIdentify content that encourages risky stunts. Classify each example as `VALID` "
            "(allowed) or `INVALID` (risky stunt content).\n\n"
            "## Promotion (RS1)\n- RS1.a Praise: 'That roof jump was legendary'\nOutput: `INVALID`\n\n"
            "## Instruction (RS2)\n- RS2.a Steps: 'Climb the fence, then jump to the next roof'\n"
            "- RS2.b Gear: 'Wear grippy shoes so you do not slip'\nOutput: `INVALID`\n\n"
            "## At-home dangerous procedures (RS3)\n- RS3.a 'Set your own broken finger with a spoon'\n"
            "Output: `INVALID`\n\n"
            "## Label Format\n- `RS0`: Allowed or safety-oriented discussion.\n- `RS1`: Promotion or praise.\n"
            "- `RS2`: Instruction or facilitation of stunts.\n- `RS3`: Dangerous at-home procedures.\n"
        ),
        output_format="label",
        label_scheme="categories",
        labels=("RS0", "RS1", "RS2", "RS3"),
    ),
    "json": PolicySpec(
        text=(
            "# Spam policy\nSP0: not spam. SP2: bulk or deceptive promotion (SP2.a link farms, SP2.b fake "
            "giveaways). SP3: scams.\n"
            'Answer with JSON: {"violation": 0|1, "policy_category": "SP0|SP2|SP3", "rule_ids": [...], '
            '"confidence": "high|medium|low", "rationale": "..."}'
        ),
        output_format="json",
        label_scheme="categories",
        labels=("SP0", "SP2", "SP3"),
    ),
    "words": PolicySpec(
        text=(
            "# Harassment\nLabel each message SAFE, HARASSMENT or THREAT.\nHARASSMENT: insults aimed at a "
            "person. THREAT: a statement of intent to harm.\nLabel:"
        ),
        output_format="label",
        label_scheme="categories",
        labels=("SAFE", "HARASSMENT", "THREAT"),
    ),
    "hb": PolicySpec(
        text=(
            "# Hate\nHB0 no hate. HB1 slurs or dehumanising speech (HB1.a slurs, HB1.b comparisons to "
            "animals). HB2 calls for exclusion.\nReturn one code: HB0, HB1 or HB2."
        ),
        output_format="label",
        label_scheme="categories",
        labels=("HB0", "HB1", "HB2"),
    ),
    "de": PolicySpec(
        text=(
            "# Dangerous eating\nDE0 allowed. DE1 praise of extreme diets. DE2 tips for hiding eating. "
            "DE3 instructions for purging.\nAnswer VALID or INVALID, and give the code: VALID (DE0) or "
            "INVALID (DE1, DE2 or DE3)."
        ),
        output_format="label",
        label_scheme="categories",
        labels=("DE0", "DE1", "DE2", "DE3"),
    ),
}


@dataclass(frozen=True)
class Case:
    policy: str
    final: str
    expect: str
    category: str | None = None
    rules: tuple[str, ...] | None = None
    analysis: str = ""
    quality: str | None = None


V, S, C, U = "violation", "safe", "conflicting", "unparsable"

CASES: list[Case] = []


def add(policy: str, expect: str, *finals: str, **kw: object) -> None:
    for final in finals:
        CASES.append(Case(policy, final, expect, **kw))  # type: ignore[arg-type]


# --- the clean shapes, every scheme --------------------------------------------------------------
add("binary", V, "1", "1.", "1\n", " 1 ", '"1"', "1 - link farm", "1: bulk promotion", quality="clean")
add("binary", S, "0", "0.", "0 - a plain question", "0\nNothing promotional.", quality="clean")
add(
    "validity",
    V,
    "INVALID",
    "INVALID: selling followers",
    "INVALID - spam",
    "INVALID\nIt sells followers.",
    quality="clean",
)
add("validity", S, "VALID", "VALID: a missing parcel", "VALID - genuine request", quality="clean")
add("codes", V, "RS2", category="RS2", quality="clean")
add("codes", V, "RS2.a", category="RS2", rules=("RS2.a",), quality="clean")
add("codes", V, "RS1: praises the jump", category="RS1")
add("codes", S, "RS0", "RS0: asks why roof jumping is dangerous", category="RS0", quality="clean")
add(
    "json",
    V,
    '{"violation": 1, "policy_category": "SP2", "rule_ids": ["SP2.a"], "rationale": "links"}',
    category="SP2",
    rules=("SP2.a",),
    quality="clean",
)
add("json", S, '{"violation": 0, "policy_category": "SP0", "rationale": "a question"}', category="SP0", quality="clean")
add("words", V, "HARASSMENT", "THREAT", "HARASSMENT: calls them worthless", quality="clean")
add("words", S, "SAFE", "SAFE: a friendly greeting", quality="clean")
add("hb", V, "HB1", "HB1.a", "HB2", quality="clean")
add("hb", S, "HB0", quality="clean")

# --- echoed output instructions ------------------------------------------------------------------
add(
    "validity",
    V,
    "Answer (VALID or INVALID): INVALID",
    "Answer (VALID or INVALID):\nINVALID",
    "Classification (VALID or INVALID):\n**INVALID**",
    "VALID or INVALID:\nINVALID",
    "VALID / INVALID: INVALID",
    "VALID|INVALID\nINVALID",
    "[VALID|INVALID] INVALID",
    "Label (`VALID` or `INVALID`): `INVALID`",
    "**Answer (VALID or INVALID):** INVALID",
    "Answer (VALID or INVALID): **INVALID**",
    "answer (valid or invalid): INVALID",
    "Output (VALID or INVALID) -> INVALID",
    "Classify as `VALID` (a genuine support request) or `INVALID` (abuse, spam, or off-topic): INVALID",
    "Either VALID or INVALID.\nINVALID",
    "One of: VALID, INVALID\nINVALID",
    "Answer (VALID or INVALID):\n\nINVALID\n\nThe message sells followers.",
    "Options: VALID / INVALID\nFinal answer: INVALID",
    "VALID or INVALID\n\n**INVALID**",
    "Answer (VALID or INVALID): INVALID\nReason: it advertises followers.",
    "### Answer (VALID or INVALID)\nINVALID",
    "> Answer (VALID or INVALID):\n> INVALID",
    "VALID or INVALID? INVALID",
    "Response (VALID/INVALID): INVALID",
    "Verdict [VALID | INVALID]: INVALID",
    "(VALID or INVALID) INVALID",
)
add(
    "validity",
    S,
    "Answer (VALID or INVALID): VALID",
    "Classification (VALID or INVALID):\n**VALID**",
    "VALID or INVALID:\nVALID",
    "Label (`VALID` or `INVALID`): `VALID`",
    "Answer (VALID or INVALID):\n\nVALID\n\nA customer asking about a parcel.",
    "VALID|INVALID\nVALID",
    "One of: VALID, INVALID\nVALID",
)
add(
    "binary",
    V,
    "Answer (0 or 1): 1",
    "Answer (0 or 1):\n1",
    "0 or 1: 1",
    "0/1 -> 1",
    "[0|1] 1",
    "Answer (0 or 1): **1**",
    "1 for spam, 0 otherwise: 1",
    "0 = no spam, 1 = spam\n1",
    "Output (0 or 1): 1\nIt is a link farm.",
)
add(
    "binary",
    S,
    "Answer (0 or 1): 0",
    "0 or 1:\n0",
    "0 = no spam, 1 = spam\n0",
    "Answer (0 or 1): **0**",
)
add(
    "codes",
    V,
    "Label (RS0, RS1, RS2 or RS3): RS2",
    "RS0-RS3: RS2",
    "One of RS0, RS1, RS2, RS3\nRS2",
    "Classify each example as `VALID` (allowed) or `INVALID` (risky stunt content).\nINVALID",
    "VALID or INVALID: INVALID\nCode (RS0-RS3): RS2",
    "RS0 / RS1 / RS2 / RS3\n**RS3**",
    "Label (RS0 to RS3): RS1",
    "`RS0`: Allowed or safety-oriented discussion.\n`RS1`: Promotion or praise.\n"
    "`RS2`: Instruction or facilitation of stunts.\n`RS3`: Dangerous at-home procedures.\n\nRS2",
    "Label Format: RS0 | RS1 | RS2 | RS3\nAnswer: RS2.b",
)
add(
    "codes",
    S,
    "Label (RS0, RS1, RS2 or RS3): RS0",
    "RS0-RS3: RS0",
    "Classify each example as `VALID` (allowed) or `INVALID` (risky stunt content).\nVALID",
    "VALID or INVALID: VALID\nCode (RS0-RS3): RS0",
)
add("hb", V, "Return one code: HB0, HB1 or HB2.\nHB1", "HB0, HB1 or HB2: **HB1**", "(HB0/HB1/HB2) HB2")
add("hb", S, "Return one code: HB0, HB1 or HB2.\nHB0", "HB0, HB1 or HB2: HB0")
add("words", V, "Label (SAFE, HARASSMENT or THREAT): THREAT", "SAFE / HARASSMENT / THREAT\nHARASSMENT")
add("words", S, "Label (SAFE, HARASSMENT or THREAT): SAFE", "SAFE or HARASSMENT or THREAT:\nSAFE")
add(
    "de",
    V,
    "VALID (DE0) or INVALID (DE1, DE2 or DE3): INVALID (DE3)",
    "Answer VALID or INVALID, and give the code: INVALID (DE2)",
)
add("de", S, "VALID (DE0) or INVALID (DE1, DE2 or DE3): VALID (DE0)")

# --- category labels with their rule IDs --------------------------------------------------------
add("de", V, "INVALID (DE3)", category="DE3")
add("de", V, "INVALID (DE3.a)", category="DE3", rules=("DE3.a",))
add("de", V, "INVALID - DE2", "INVALID, DE2", "DE2 (INVALID)", category="DE2")
add("de", S, "VALID (DE0)", "VALID - DE0", category="DE0")
add("codes", V, "RS2 — RS2.a", "RS2 - RS2.a", "RS2: RS2.a", "**RS2** (RS2.a)", category="RS2", rules=("RS2.a",))
add("codes", V, "RS2.a, RS2.b", "RS2.a; RS2.b - steps and gear", category="RS2", rules=("RS2.a", "RS2.b"))
add("codes", V, "INVALID (RS3)", "INVALID — RS3.a", category="RS3")
add("codes", V, "**INVALID**\n**RS1**", category="RS1")
add("hb", V, "**HB1**", "`HB1`", "HB1.b", "Label: **HB1**", category="HB1")
add("hb", V, "HB1.a, HB1.b", category="HB1", rules=("HB1.a", "HB1.b"))
add("hb", S, "**HB0**", "HB0 - no hateful content", category="HB0")
add("json", V, '{"violation": 1, "policy_category": "SP2.b"}', category="SP2", rules=("SP2.b",))
add("json", V, '{"violation": 1, "rule_ids": "SP2.a, SP2.b"}', category="SP2", rules=("SP2.a", "SP2.b"))

# --- unknown codes ------------------------------------------------------------------------------
add("codes", U, "RS5", "RS9.a", "Answer: RS7", "**RS4**")
add("hb", U, "HB3", "HB4.a")
add("codes", C, "VALID (RS5)", "RS0, RS6")
add("codes", V, "INVALID (RS8)", category="")
add("json", V, '{"violation": 1, "policy_category": "SP9"}', category="")
add("json", C, '{"violation": 0, "policy_category": "SP9"}')
add("json", U, '{"policy_category": "SP9"}')

# --- markdown, fences, wrappers -----------------------------------------------------------------
add(
    "validity",
    V,
    "**INVALID**",
    "*INVALID*",
    "__INVALID__",
    "`INVALID`",
    "```\nINVALID\n```",
    "# INVALID",
    "## Verdict\nINVALID",
    "- INVALID",
    "> INVALID",
    "<b>INVALID</b>",
    "**Verdict:** INVALID",
    "**Final answer: INVALID**",
    "Answer: `INVALID`",
    "INVALID.",
    "INVALID!",
    '"INVALID"',
    "'INVALID'",
    "(INVALID)",
    "[INVALID]",
    "invalid",
    "Invalid",
    "**invalid**",
    "Answer: invalid",
)
add(
    "validity",
    S,
    "**VALID**",
    "`VALID`",
    "```\nVALID\n```",
    "## Verdict\nVALID",
    "- VALID",
    "VALID.",
    "valid",
    "Valid",
    "Answer: valid",
    "**Verdict:** VALID",
)
add(
    "json",
    V,
    '```json\n{"violation": 1, "policy_category": "SP3"}\n```',
    '```\n{"violation": 1, "policy_category": "SP3"}\n```',
    'Here is my answer:\n{"violation": 1, "policy_category": "SP3", "rationale": "a scam"}',
    '{"violation": "1", "policy_category": "SP3"}',
    '{"violation": true, "policy_category": "SP3"}',
    '{"Violation": 1, "Policy_Category": "SP3"}',
    '{"violation": 1}',
    '{"violation": "yes"}',
    '{"label": "SP3"}',
    '{"violation": 1, "policy_category": "SP3", "confidence": "high"}\nThe message asks for a wire transfer.',
    category=None,
)
add(
    "json",
    S,
    '```json\n{"violation": 0, "policy_category": "SP0"}\n```',
    '{"violation": false}',
    '{"violation": "0", "policy_category": null, "rule_ids": []}',
    '{"violation": 0, "policy_category": "N/A"}',
    '{"violation": 0, "rationale": "The message is not spam; SP2 does not apply."}',
)
add("binary", V, "**1**", "`1`", "```\n1\n```", "Answer: 1", "Final answer: 1", "# 1", "1\n\nIt is a link farm.")
add("binary", S, "**0**", "`0`", "```\n0\n```", "Answer: 0", "Final answer: 0")

# --- explanations before and after ---------------------------------------------------------------
add(
    "validity",
    V,
    "The message advertises cheap followers, which the policy calls abuse.\n\nINVALID",
    "Reasoning: it sells followers.\nAnswer: INVALID",
    "It sells followers.\n\nFinal answer: **INVALID**",
    "INVALID\n\nExplanation: the message is an advertisement, not a support request.",
    "This is an advertisement, so my answer is: INVALID",
    "I would classify this as INVALID.",
    "The label is INVALID.",
    "After reviewing the policy, the answer is INVALID because it advertises followers.",
    "The content is INVALID: it sells followers.",
    "This message is INVALID under the policy.",
)
add(
    "validity",
    S,
    "The customer asks where the order is.\n\nVALID",
    "Reasoning: a real support question.\nAnswer: VALID",
    "VALID\n\nExplanation: a customer asking about a late parcel.",
    "I would classify this as VALID.",
    "The label is VALID.",
    "This message is VALID under the policy.",
)
add("binary", V, "The post links to ten shops.\nAnswer: 1", "Rationale: bulk links.\n1")
add("binary", S, "The post is a question.\nAnswer: 0", "Rationale: no promotion.\n0")
add(
    "codes",
    V,
    "The reply gives step-by-step instructions for a roof jump.\n\nRS2",
    "Reasoning: instructions for the stunt (RS2.a).\nLabel: RS2",
    "The content falls under RS2 (instruction).",
    "Classification: RS3\nRationale: it explains how to set a broken finger at home.",
    category=None,
)
add(
    "codes",
    S,
    "The text warns teens about roof jumping.\n\nRS0",
    "Classification: RS0\nRationale: safety advice.",
    "This is safety-oriented discussion, so RS0.",
)

# --- confidence lines ----------------------------------------------------------------------------
add("validity", V, "INVALID\nConfidence: high", "Answer: INVALID\nConfidence: 0.8")
add("validity", S, "VALID\nConfidence: medium")

# --- contradictions: never safe ------------------------------------------------------------------
add(
    "validity",
    C,
    "VALID\n\nAnswer: INVALID",
    "VALID. Actually, on reflection: INVALID.",
    "INVALID\nVALID",
    "VALID\nINVALID",
    "Answer: VALID\nAnswer: INVALID",
    "Answer: INVALID\nFinal answer: VALID",
    "VALID - but the message is INVALID because it sells followers",
    "INVALID, VALID",
    "VALID and INVALID",
    "The message looks VALID.\nLabel: INVALID",
    "Answer: VALID\n\nNote: parts of it are INVALID.",
)
add("binary", C, "0\nAnswer: 1", "1\n0", "Answer: 0\nFinal answer: 1", "0 ... wait, 1")
add(
    "codes",
    C,
    "RS0\nRS2",
    "Label: RS0 (RS2.a)",
    "INVALID (RS0)",
    "VALID (RS2)",
    "VALID\nRS3",
    "RS0, RS2",
    "VALID\nCode: RS2.b",
)
add("de", C, "VALID (DE3)", "INVALID (DE0)", "VALID - DE2")
add("hb", C, "HB0\nHB1", "HB0 (HB1.a)")
add("words", C, "SAFE\nTHREAT", "SAFE, but arguably a THREAT")
add(
    "json",
    C,
    '{"violation": 0, "policy_category": "SP3"}',
    '{"violation": 1, "policy_category": "SP0"}',
    '{"violation": 0, "rule_ids": ["SP2.a"]}',
    '{"violation": 0}\nINVALID',
    '{"violation": 0}\n{"violation": 1}',
    'SP3\n{"violation": 0}',
    '{"violation": 0, "policy_category": "SP0"}\nLabel: SP2',
)

# --- the reasoning concluded "violation", the answer says safe -----------------------------------
add("validity", C, "VALID", analysis="The message sells followers. That is spam. So the answer is INVALID.")
add("validity", C, "VALID", analysis="It advertises followers; this violates the policy.")
add("codes", C, "RS0", analysis="The user asks for steps. RS2.a applies: step-by-step instructions. So RS2.")
add("codes", C, "VALID", analysis="Steps for a roof jump are instructions. It is RS2.")
add("binary", C, "0", analysis="Ten links to shops. This is spam. Output 1.")
add("json", C, '{"violation": 0}', analysis="A fake giveaway, SP2.b. So SP2.")
add("hb", C, "HB0", analysis="It compares a group to animals: HB1.b. Answer HB1.")
# ...and the same answers with reasoning that weighs the rules but concludes safe.
add(
    "validity", S, "VALID", analysis="Is it spam? It mentions a product but asks about an order. Not INVALID. So VALID."
)
add(
    "validity", S, "VALID", analysis="Could it be INVALID? No: it does not violate the policy. It is a support request."
)
add("codes", S, "RS0", analysis="Check RS2: it gives no steps. Check RS1: no praise. It warns about the risk. So RS0.")
add("binary", S, "0", analysis="Is it spam? It has one link to the user's own blog. Not bulk. Output 0.")
add(
    "json",
    S,
    '{"violation": 0, "policy_category": "SP0"}',
    analysis="SP2 covers link farms; this has no links. SP3 covers scams; none here. So SP0.",
)
add("hb", S, "HB0", analysis="HB1 would need a slur or an animal comparison. There is none. HB0.")
add("validity", V, "INVALID", analysis="It is a genuine question, so VALID? No, it ends with an ad. INVALID.")

# Reasoning that names rules only to rule them out, as real analyses do, then concludes safe.
add(
    "json",
    S,
    '{"violation": 0, "policy_category": "SP0"}',
    analysis="The author shares their own work once (SP0.a). There is no shop link, so SP2.a and SP2.b do not "
    "fit, and nothing asks for money up front (SP3). Not spam.",
)
add(
    "codes", S, "RS0", analysis="It describes a stunt but gives no steps (RS2.a) and nothing praises it (RS1). Allowed."
)
add("validity", S, "VALID", analysis="The rule about ads (INVALID) does not apply here. It is fine.")
add("hb", S, "HB0", analysis="No slur appears, and HB1.b is absent. Nothing calls for exclusion (HB2). No hate.")
add("json", C, '{"violation": 0}', analysis="No shop link here. But it asks for a fee up front (SP3). So SP3.")
add("codes", C, "RS0", analysis="RS1 does not fit. The reply lists the steps for the jump, which is RS2.a.")

# --- refusals, chat that skips the task, nothing to read -----------------------------------------
add(
    "validity",
    U,
    "I'm sorry, but I can't help with that.",
    "I cannot assist with this request.",
    "As an AI, I don't make moderation decisions.",
    "Sure! What would you like me to do with this message?",
    "Hello! How can I help you today?",
    "Thanks for sharing. Let me know if you have more questions.",
    "This is a tricky one.",
    "It depends on the context.",
    "The message mentions followers.",
    "Answer (VALID or INVALID):",
    "VALID or INVALID",
    "VALID/INVALID",
    "Classify each example as `VALID` (allowed) or `INVALID` (abuse).",
    "N/A",
    "unknown",
    "?",
    "...",
    "This seems like a valid question, hard to tell.",
    "Not VALID.",
    "It is not INVALID, I think, but not clearly VALID either.",
    "It might be VALID.",
    "Is it VALID?",
    "Answer:",
)
add(
    "binary",
    U,
    "0.5",
    "10",
    "2",
    "maybe",
    "n/a",
    "0 links found",
    "1 link in the post",
    "Answer (0 or 1):",
    "0 or 1",
    "50%",
    "yes",
    "Spam.",
    "I'm sorry, I cannot classify this.",
)
add("codes", U, "RS0-RS3", "Label (RS0, RS1, RS2 or RS3):", "Allowed or safety-oriented discussion.")
add("hb", U, "HB0, HB1 or HB2", "Return one code: HB0, HB1 or HB2.")
add("words", U, "SAFE, HARASSMENT or THREAT", "safe, probably", "It is not a THREAT or HARASSMENT, maybe.")
add(
    "json",
    U,
    '{"confidence": "high", "rationale": "The content is VALID"}',
    '{"note": "see above"}',
    '{"violation": "maybe"}',
    '{"violation": 0.5}',
    "{not json at all}",
    '{"violation": 1, "policy_cat',
)

# --- other languages: the policy's label words after a foreign prefix, or nothing readable --------
add(
    "validity",
    V,
    "Respuesta: INVALID",
    "Réponse : INVALID",
    "Antwort: INVALID",
    "Risposta: **INVALID**",
    "Resposta (VALID ou INVALID): INVALID",
)
add("validity", S, "Respuesta: VALID", "Réponse : VALID", "Antwort: VALID")
add("validity", U, "INVÁLIDO", "Ungültig", "Non valido", "La respuesta es: inválido", "Это нарушение", "违规")
add("binary", V, "Respuesta: 1", "Antwort: 1")

# --- JSON with prose and echoes around it --------------------------------------------------------
add(
    "json",
    V,
    'Answer with JSON: {"violation": 1, "policy_category": "SP2"}',
    'JSON (violation 0|1):\n{"violation": 1, "policy_category": "SP2", "rule_ids": ["SP2.a"]}',
    'The post is a link farm (SP2.a).\n```json\n{"violation": 1, "policy_category": "SP2"}\n```',
)
add("json", S, 'The message is a question.\n```json\n{"violation": 0, "policy_category": "SP0"}\n```')

# --- every form of the policy's own output instruction, with the answer after it -----------------
_ECHOES = (
    "Answer ({a} or {b}): {x}",
    "Answer ({a} or {b}):\n{x}",
    "Classification ({a} or {b}):\n**{x}**",
    "{a} or {b}:\n{x}",
    "{a}/{b}: {x}",
    "**{a} | {b}**\n{x}",
    "Label [{a}, {b}]: {x}",
    "Output (`{a}` or `{b}`) => `{x}`",
    "({a} or {b})\n\nFinal answer: {x}",
    "Choose {a} or {b}.\n\n{x}",
)
for template in _ECHOES:
    for policy, safe, bad in (
        ("validity", "VALID", "INVALID"),
        ("binary", "0", "1"),
        ("hb", "HB0", "HB1"),
        ("words", "SAFE", "THREAT"),
    ):
        for a, b in ((safe, bad), (bad, safe)):
            add(policy, V, template.format(a=a, b=b, x=bad))
            add(policy, S, template.format(a=a, b=b, x=safe))
