"""The Head's phrase banks for the second half of its arc: what it became (specialisation),
the inference dance, its own perspective, and its live moment lines. A Bank names the fact it
needs (narrate/claims.py); a plain list makes no claim about its numbers."""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank

# --- Specialisation -------------------------------------------------------------------------
SPECIALIST = [
    ("By the end I knew my name: a {role} head, {words}, with a score of {score}."),
    "What I became, the probes can prove: a {role} specialist, {words}. Score {score}.",
    "I am a {role} head, {words}; the probes give me {score}.",
    "My calling, measured: {role}, {words}, a score of {score}.",
]
ALSO = [  # a head proven in more roles than the one its story (and `fabric heads`) shows
    "The ablation named me a {roles} head as well, with a score of {scores}.",
    "Not only that: the probes proved me a {roles} head too ({scores}).",
    "I carry a second calling as well, {roles}, proven the same way ({scores}).",
    "The same ablation counted me among the {roles} heads too, at {scores}.",
]
HELDOUT = [
    ("On held-out sentences I found the antecedent {heldout} of the time; the nearest-noun "
     "guess found it {baseline}."),
    "Held-out accuracy {heldout}, where the nearest noun alone would give {baseline}.",
    "On noun pairs I never saw together: {heldout} right, against {baseline} for the nearest noun.",
    "New pairs of nouns: {heldout} resolved by me, {baseline} by the nearest-noun guess.",
]
HELDOUT_ROLE = [  # any role but pronoun: the probe's own bar for a head without the role
    ("On held-out sentences I was right {heldout} of the time at my role's places; a head "
     "without my role gets {baseline} there."),
    "Held-out: {heldout} at the places my role serves, against {baseline} without the role.",
    "At my role's places in sentences I never saw: {heldout} right, where {baseline} is the bar.",
    "On new sentences, {heldout} at my role's places; {baseline} is what a head without it gets.",
]
# {loss_move} and {acc_move} are figures.moved: "went from A to B", or "stayed at A" when the
# two printed figures are the same (the loss in nats, accuracy as a percentage).
ABLATION = Bank("hurt", [
    ("They silenced me to be sure. With my output zeroed the loss on the words after my role "
     "{loss_move} nats, and accuracy {acc_move}. *Take me out and the weave loosens.*"),
    ("The ablation is my proof: zero my output and the loss on the tokens I serve {loss_move} "
     "nats; accuracy {acc_move}."),
    ("Silence me and see: on the words after my role the loss {loss_move} nats, and accuracy "
     "{acc_move}."),
    ("Zeroed, I leave a hole: the loss after my role {loss_move} nats, and accuracy "
     "{acc_move}."),
])
ABLATION_BACKUP = Bank("harmless", [
    ("They silenced me alone, and almost nothing happened: the loss on the words after my "
     "role {loss_move} nats, and accuracy {acc_move}."),
    ("Zero me alone and the Fabric barely notices: the loss after my role {loss_move} nats, "
     "accuracy {acc_move}."),
    ("Alone, my silence costs almost nothing: the loss {loss_move} nats, and accuracy "
     "{acc_move}."),
    ("Silenced by myself I am barely missed: the loss {loss_move} nats, accuracy {acc_move}."),
])
TEAM_HURT = Bank("hurt", [
    ("Silenced together with the others of my role, the loss {group_loss_move} nats and "
     "accuracy {group_acc_move}. *Alone I am not needed; together we are the thread.*"),
    ("Zero every head of my role at once and the loss on my role's words {group_loss_move} "
     "nats; accuracy {group_acc_move}."),
    ("But silence all of us and the cloth tears: the loss {group_loss_move} nats, accuracy "
     "{group_acc_move}. *A team, not a soloist.*"),
    ("Together we matter: with the whole role silenced, the loss {group_loss_move} nats and "
     "accuracy {group_acc_move}."),
])
REDUNDANT = [
    "I am not alone in it: {list} {verb} the same thread, so silencing me alone hurts less.",
    ("A backup runs beside me: {list} {verb} the very same stitch, and the Fabric leans on "
     "whichever of us the Dropout spares."),
    "{list} {verb} what I carry; each of us is the other's spare.",
    "The same thread runs through {list} as well. *If I snap, {it_they} {hold}.*",
]
COVERED = [  # the others master every pronoun this head masters, and more
    ("{list} {verb} every pronoun I carry, and {theirs} besides. *I am the spare thread "
     "here.*"),
    ("Whatever I resolve, {list} {verb} too, and {theirs} as well. Pooled, we find the "
     "antecedent {team} of the time on held-out sentences."),
    "{theirs} {is_are} beyond me; {list} {verb} those and all of mine. *A backup, not a half.*",
    ("I am the smaller share: {list} {verb} all my pronouns and {theirs}. Together: {team} on "
     "held-out sentences."),
]
DIVIDED = [
    ("We split the loom between us. My threads are {mine}; {list} {verb} {theirs}. Pooled, our "
     "gazes find the antecedent {team} of the time on held-out sentences. *Not one weaver: a "
     "team.*"),
    ("I do not carry every pronoun. {mine} are mine; {theirs} belong to {list}. Together our "
     "attention lands on the right noun {team} of the time on held-out sentences."),
    ("We divided the work: {mine} to me, {theirs} to {list}. Pooled: {team} on held-out "
     "sentences."),
    ("My share is {mine}; {list} {verb} {theirs}. Our pooled attention is right {team} of the "
     "time."),
]
DIFFUSE = [
    ("I never became a specialist. At the last probe my strongest habit was {words} ({role} "
     "score {score}), not enough for the probes to name me. *Useful a little everywhere, "
     "essential nowhere that they could prove.*"),
    ("No role claimed me. My best score at the last probe was {score}, for {role}, {words} now "
     "and then. The Fabric leaned on other heads."),
    ("The probes never named me. My best: {role}, {score}, {words} at times. *A loose weave.*"),
    "I stayed diffuse: {score} for {role} at the last probe, my strongest habit.",
]
KNOCK = [
    ("At step {step} Dropout struck at a rate of {rate_pct}: my clean score of {clean} fell to "
     "{dropped} under its mask. *If this thread breaks, find another.*"),
    ("Dropout tested me at step {step}, silencing {rate_pct} of the units; my score sank from "
     "{clean} to {dropped}."),
    "Step {step}: under a {rate_pct} mask I scored {dropped}, against {clean} clean. *What if this thread snaps?*",
    "Dropout's dark, step {step}: {clean} clean, {dropped} masked, at a rate of {rate_pct}.",
]
RECOVERED = [
    ("By step {step} I kept my score under the same mask: {dropped} with dropout against "
     "{clean} without, the knock of step {knock_step} woven over."),
    "At step {step} I had woven spare paths: {clean} clean, {dropped} under the mask.",
    "Step {step}: {dropped} masked, {clean} clean; the knock of step {knock_step} was mended.",
    "By step {step} the mask no longer shook me: {dropped} against {clean}.",
]
UNDER_DROPOUT = {
    "held": Bank("held", [
        ("At the last probe, under a dropout mask of {rate}, the trackers I lead resolved "
         "{dropped} of pronouns, against {clean} with every unit lit. *The grip held.*"),
        ("Under Dropout's {rate} mask, at the last probe: {dropped} of pronouns resolved, "
         "{clean} clean. My focus held."),
        "Masked at {rate}, we still resolved {dropped} of pronouns ({clean} clean). It held.",
        "At the end, a {rate} mask left us {dropped} of pronouns, where clean we had {clean}. The focus held.",
    ]),
    "bent": Bank("bent", [
        ("Under a dropout mask of {rate} at the last probe we resolved {dropped} of pronouns "
         "against {clean} clean. *It bent.*"),
        "Masked at {rate}: {dropped} resolved, {clean} clean. My focus bent, and stayed.",
        "A {rate} mask took us from {clean} to {dropped} of pronouns. Bent, not broken.",
        "Dropout's {rate}: {dropped} against {clean}. *It bent under the dark.*",
    ]),
    "shaken": Bank("shaken", [
        ("Under a dropout mask of {rate} we resolved only {dropped} of pronouns against {clean} "
         "clean. *The dark shook me.*"),
        "Masked at {rate}: {dropped}, where clean we had {clean}. Dropout shook me.",
        "A {rate} mask cut us from {clean} to {dropped}. *It shook me.*",
        "Dropout's {rate} left {dropped} of {clean}'s grip. It shook me badly.",
    ]),
}

# --- The Inference Dance -----------------------------------------------------------------
# {val} "settled" only where the last two probes' validation losses are within 10% (steady)
FADE = Bank("steady", [
    ("Then the schedule let the tide go out. The learning rate, {peak} at its height, was {lr} "
     "at step {at}; {adam}'s last steps moved my block by {ratio} of its size. The loss on "
     "fresh sentences settled at {val}."),
    ("Training ebbed: a learning rate of {lr} by step {at}, down from {peak}, and steps of "
     "{ratio} of my weights' size. The Fabric's judgment came to rest at {val} on fresh "
     "sentences."),
    ("At step {at} the rate was {lr} (its peak had been {peak}); my block moved {ratio} of "
     "itself per step. The loss on fresh sentences: {val}."),
    ("The last steps: rate {lr}, down from {peak}, my block moving {ratio} of its size, the "
     "Fabric at {val} on fresh sentences. Then stillness."),
])
FADE_FALLING = [  # the run ended with the loss still moving: no rest, no stillness
    ("Then the schedule let the tide go out. The learning rate, {peak} at its height, was {lr} "
     "at step {at}; {adam}'s last steps moved my block by {ratio} of its size. The loss on "
     "fresh sentences was {val} when the run ended, still on the move."),
    ("Training ebbed: a learning rate of {lr} by step {at}, down from {peak}, and steps of "
     "{ratio} of my weights' size. The run stopped with the loss at {val} on fresh sentences."),
    ("At step {at} the rate was {lr} (its peak had been {peak}); my block moved {ratio} of "
     "itself per step. The loss on fresh sentences: {val}."),
    ("The last steps: rate {lr}, down from {peak}, my block moving {ratio} of its size, the "
     "Fabric at {val} on fresh sentences when the steps ran out."),
]
INFERENCE = [
    "Now sentences pass through me untouched by any gradient. *{sentence}* {pairs}",
    "Inference. In flows *{sentence}* {pairs}",
    "No more corrections; only reading. *{sentence}* {pairs}",
    "The weights are still now. A sentence arrives: *{sentence}* {pairs}",
]
INFERENCE_MORE = [
    "Then: *{sentence}* {pairs}",
    "Another: *{sentence}* {pairs}",
    "And another: *{sentence}* {pairs}",
    "Next came this: *{sentence}* {pairs}",
]
PAIR_FIRST = [
    "From \"{pronoun}\" my gaze lands on \"{target}\", weight {weight}.",
    "\"{pronoun}\" draws me to \"{target}\" at {weight}.",
    "I look from \"{pronoun}\" and find \"{target}\" with {weight}.",
    "For \"{pronoun}\", \"{target}\": {weight}.",
]
PAIR_MORE = [
    "From \"{pronoun}\", \"{target}\" at {weight}.",
    "For \"{pronoun}\", {weight} on \"{target}\".",
    "Then \"{pronoun}\": \"{target}\", {weight}.",
    "And from \"{pronoun}\": \"{target}\", {weight}.",
]
RIGHT = Bank("right", ["*That is the one.*", "*Tied true.*", "*The right noun.*",
                       "*Bound where it belongs.*"])
WRONG = Bank("wrong", ["*Not the noun it means; I still miss here.*", "*Wrong thread. I know it.*",
                       "*A dropped stitch.*", "*I missed this one.*"])

# --- The Head's Perspective ------------------------------------------------------------------
PERSPECTIVE_SPECIALIST = [
    ("In a Fabric of {n} heads I am one, {words}; the probes named {n_spec_mine} {role} "
     "{heads_word} in all. *I listen for the threads I can bind.*"),
    ("One head among {n}, and one of {n_spec_mine} named for {role}. *Small, but the weave "
     "would notice.*"),
    ("I am small: one of {n} heads, my work quiet and measured. {n_spec_mine} of us carry "
     "{role}. *The Fabric hums, and I listen.*"),
    ("{n} heads in this Fabric; {n_spec_mine} of them {role} heads, and I among them. *Without "
     "us, meaning would fray.*"),
]
PERSPECTIVE_ONLY = [
    ("In a Fabric of {n} heads I am the only one the probes could prove for {role}, {words}. "
     "*I listen for the threads only I can bind.*"),
    ("One head among {n}, and the only {role} head. *Small, but without me, meaning would "
     "fray.*"),
    ("I am small: one of {n} heads, the one that carries {role}. *The Fabric hums, and I "
     "listen.*"),
    ("{n} heads in this Fabric, and {role} rests on me alone. *A quiet stitch, measured.*"),
]
PERSPECTIVE_NONE = [
    "One of {n} heads, in a Fabric where the probes could prove none of us. *The weave is still loose.*",
    "{n} heads, and not one proven: this Fabric never found its specialists. *Another run, perhaps.*",
    "Of {n} heads, none was named. I was one of many loose threads.",
    "No head of these {n} earned a role. *We all stayed searching.*",
]
PERSPECTIVE_DIFFUSE = [
    ("In a Fabric of {n} heads, {n_spec} earned a role, and I was not one of them. *Perhaps "
     "another run, another seed.*"),
    "One of {n} heads; {n_spec} named, not I. I carried a little of everything.",
    ("{n} heads, {n_spec} of them named. Not me. *The weave holds without my knot, and I "
     "still listen.*"),
    "Of {n} heads, {n_spec} were proven needed. I was one of the others.",
]
STORM = Bank("diverged", [
    ("Then the storm broke the Fabric. At step {at} the loss became {loss} and the gradient "
     "{grad}; the last sound step was {last_good}, with a learning rate of {lr}. Whatever I "
     "was becoming was torn away, and no sentence will pass through me now."),
    ("At step {at} everything tore: loss {loss}, gradient {grad}, the learning rate {lr}. "
     "Step {last_good} was the last whole weave. *There is no inference after a storm like "
     "this.*"),
    ("Step {at}: the loss read {loss}, the gradient {grad}, at a rate of {lr}. Step "
     "{last_good} was the last I could trust."),
    ("The weave tore at step {at} (loss {loss}, gradient {grad}, learning rate {lr}); nothing "
     "after step {last_good} holds."),
])

MOMENT_LINES = {
    "first_snap": [
        "\"{pronoun}\" pulled tight to \"{antecedent}\" at step {step}, weight {weight}.",
        "step {step}, my gaze from \"{pronoun}\" found \"{antecedent}\" ({weight}).",
        "at step {step}, \"{pronoun}\" found \"{antecedent}\" in my attention, {weight}.",
        "step {step}: {weight} from \"{pronoun}\" onto \"{antecedent}\".",
    ],
    "role_threshold": [
        "my {role} score crossed {threshold} at step {step}: {score}.",
        "step {step}, {role} score {score}, over the line at {threshold}.",
        "at step {step} my {role} score reached {score}, past {threshold}.",
        "{role}, step {step}: {score} against a line of {threshold}.",
    ],
    # {loss_move}, {group_loss_move}, {group_acc_move}: figures.moved on the moment's
    # ablation and group_ablation ("went from A to B", or "stayed at A")
    "specialist": [
        ("step {step}: I am a {role} head, score {score}; silence me and the loss on the words "
         "after my role {loss_move} nats."),
        ("step {step}: named a {role} head (score {score}); zeroed, the loss after my role "
         "{loss_move} nats."),
        ("step {step}, proven a {role} head (score {score}): silenced, the loss on the words "
         "after my role {loss_move} nats."),
        "a {role} head by step {step}, score {score}; the ablation: the loss {loss_move} nats.",
    ],
    "specialist_backup": [
        ("step {step}: I am a {role} head, score {score}, one of a team: silence us together and "
         "accuracy {group_acc_move}."),
        ("step {step}: a {role} head in a team (score {score}); the whole team silenced, "
         "accuracy {group_acc_move}."),
        ("step {step}: {role} head, score {score}; my team silenced, the loss "
         "{group_loss_move} nats and accuracy {group_acc_move}."),
        ("one {role} head of a team at step {step} (score {score}): all of us zeroed, accuracy "
         "{group_acc_move}."),
    ],
}
