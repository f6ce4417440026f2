"""The Head's phrase banks, by beat of the seeds' arc. A Bank names the fact it needs
(narrate/claims.py); a plain list makes no claim about its numbers."""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank

TITLES = {
    "pronoun": ["{who}: The Binder of Pronouns", "{who}: A Thread Between a Pronoun and Its Noun",
                "{who}: The Quiet Stitcher", "{who}: Where the Pronouns Point"],
    "other": ["{who}: What I Became", "{who}: A Head Among Heads", "{who}: My Own Thread",
              "{who}: A Calling of My Own"],
    "diffuse": ["{who}: Still Searching the Weave", "{who}: The Head Without a Calling",
                "{who}: A Loose Thread", "{who}: Useful Nowhere in Particular"],
}
EPIGRAPH = [
    ("I am Head {head} of Layer {layer}, one small shuttle on a loom of {n_heads} heads "
     "across {n_layers} {layers_word}."),
    "I am Head {head} of Layer {layer}: {d_head} dimensions of asking, answering and carrying.",
    ("I am Head {head} of Layer {layer}. Query, key and value: three faces of one small mind, "
     "{d_head} dimensions each."),
    ("Head {head} of Layer {layer}, one of {n_heads} in my layer. This is what I saw, and what "
     "the probes saw in me."),
]

# --- Random Beginnings ------------------------------------------------------------------
BEGIN = [
    ("At step {at} the probes first looked at me, and there was little to see. Of my attention "
     "from each pronoun, {score} landed on the noun it meant, and my argmax found the right "
     "antecedent {acc} of the time; simply picking the nearest noun managed {base}."),
    ("When the probes first read me, at step {at}, I was noise pretending to be a pattern: "
     "{score} of my gaze from pronouns reached their antecedents, and my argmax was right "
     "{acc} of the time against {base} for the nearest-noun guess."),
    ("Step {at}, the first reading. A pronoun score of {score}; the right noun under my argmax "
     "{acc} of the time, where the nearest noun would be right {base} of it."),
    ("The first probe came at step {at}. My weights were a scatter: {score} of my attention "
     "from pronouns on their nouns, {acc} argmax accuracy, {base} for the lazy nearest-noun "
     "guess."),
]
BEGIN_LEANING = Bank("right", [
    ("In *{sentence}* my heaviest weight from \"{pronoun}\" already fell on \"{antecedent}\", "
     "with {weight} of it. *Chance, dressed as a preference.*"),
    ("From \"{pronoun}\" in *{sentence}* I happened to favour \"{antecedent}\", with {weight}. "
     "*A coin that landed right, nothing more.*"),
    ("*{sentence}* My query for \"{pronoun}\" leaned toward \"{antecedent}\", {weight} of "
     "it. *A lean is not a choice.*"),
    ("Even then, reading *{sentence}*, my top weight from \"{pronoun}\" sat on "
     "\"{antecedent}\": {weight}. *Luck, not understanding.*"),
])
BEGIN_ASTRAY = Bank("wrong", [
    ("In *{sentence}* I looked from \"{pronoun}\" and my heaviest weight, {weight}, fell on "
     "\"{top}\"; \"{antecedent}\" received {on_antecedent}. *Somewhere in this row is a "
     "meaning. I cannot find it yet.*"),
    ("Given *{sentence}*, my query for \"{pronoun}\" drifted to \"{top}\" with weight {weight}, "
     "and \"{antecedent}\", the word it truly meant, got {on_antecedent}. *Every thread pulls "
     "a little, none pulls hard.*"),
    ("*{sentence}* From \"{pronoun}\" I reached for \"{top}\" ({weight}) and gave "
     "\"{antecedent}\" only {on_antecedent}. *Which of these is mine to bind?*"),
    ("The Tokenizer handed me *{sentence}* My gaze from \"{pronoun}\" rested on \"{top}\", "
     "{weight}; the noun it meant, \"{antecedent}\", had {on_antecedent}."),
])
FIRST_TOUCH = [
    ("Then the Gradient came down the residual stream and reached my layer with a norm of "
     "{arriving} at step {at}, and Adam turned it into a step that moved my block by {ratio} "
     "of its own size. *Wrong. Move.* I moved."),
    ("The first correction reached Layer {layer} at step {at} carrying a norm of {arriving}; "
     "Adam's step shifted my block's weights by {ratio} of their length. A nudge, not a "
     "lesson."),
    ("Step {at}: the Gradient arrived at Layer {layer} at {arriving}. Adam made of it a step of "
     "{ratio} of my block's size. *This was wrong. Adjust.*"),
    ("At step {at} a tide of {arriving} reached my layer from above, and my block moved by "
     "{ratio} of itself. *I did not understand it. I felt it.*"),
]

# --- Finding My Focus ---------------------------------------------------------------------
NEIGHBOURS_FIRST = [
    "Around me other heads found their callings first: {list}. *They know what they are for.*",
    "My neighbours woke before I did: {list}. Their threads pulled taut while mine still sagged.",
    "Others crossed their lines before me: {list}. *Not yet me.*",
    "I watched the others find their work first: {list}.",
]
NEIGHBOURS_ANY = [
    "Other heads were finding their callings too: {list}. *Each of us pulls a different thread.*",
    "I was not the only one waking: {list}.",
    "Around me the loom was waking: {list}.",
    "Elsewhere in the Fabric: {list}. *We were all learning at once.*",
]
NEIGHBOUR_ITEM = "{who} crossed the {role} line of {threshold} at step {at}, scoring {score}"
SNAP_CLEAR = Bank("clear_margin", [
    ("Step {at}. In *{sentence}* my query for \"{pronoun}\" met the key of \"{antecedent}\" and "
     "held: weight {weight} on it, with \"{runner_up}\" a distant second at {runner_weight}. "
     "*There. That is what \"{pronoun}\" means.*"),
    ("It happened at step {at}. Reading *{sentence}*, I looked from \"{pronoun}\" and found "
     "\"{antecedent}\" waiting, weight {weight}; the runner-up, \"{runner_up}\", held only "
     "{runner_weight}. *A knot tied to the right one.*"),
    ("Step {at}, *{sentence}*: from \"{pronoun}\", {weight} on \"{antecedent}\" and "
     "{runner_weight} on the next best, \"{runner_up}\". A thread snapped taut."),
    ("At step {at} the spark came. \"{pronoun}\" in *{sentence}* put {weight} of my attention "
     "on \"{antecedent}\", leaving \"{runner_up}\" {runner_weight}. *So this is the thread.*"),
])
SNAP_NARROW = Bank("narrow_margin", [
    ("Step {at}. In *{sentence}* my query for \"{pronoun}\" found \"{antecedent}\" first, "
     "weight {weight}, but \"{runner_up}\" was close behind at {runner_weight}. *A thread, "
     "not yet a knot.*"),
    ("At step {at}, in *{sentence}*, \"{pronoun}\" leaned to \"{antecedent}\" ({weight}) over "
     "\"{runner_up}\" ({runner_weight}), by a margin I could lose again."),
    ("Step {at}: \"{antecedent}\" won my attention from \"{pronoun}\" in *{sentence}* with "
     "{weight}, \"{runner_up}\" a near second at {runner_weight}. *Am I sure? Not yet.*"),
    ("It began faintly at step {at}: in *{sentence}*, {weight} from \"{pronoun}\" to "
     "\"{antecedent}\", {runner_weight} still on \"{runner_up}\"."),
])
SNAP_OTHER = [
    ("The first snap, at step {at}, was not mine: {who} looked from \"{pronoun}\" to "
     "\"{antecedent}\" with weight {weight}. I felt the weave tighten somewhere else."),
    ("At step {at} {who} locked \"{pronoun}\" onto \"{antecedent}\" ({weight}); the "
     "snap belonged to another head."),
    "Another head, {who}, snapped first, at step {at}: \"{pronoun}\" to \"{antecedent}\", {weight}.",
    ("{who} found it before me, at step {at}: {weight} of its attention from \"{pronoun}\" on "
     "\"{antecedent}\"."),
]
NO_SNAP = [
    ("No moment came when my gaze locked onto an antecedent in every story sentence; the "
     "chronicle holds none for me. By the last probe my pronoun score was {score}."),
    ("I waited for the moment the others talk about, the sudden pull from a pronoun to its "
     "noun. The chronicle records none for me; at the last probe, {score} of my pronoun "
     "attention reached the right noun."),
    ("The snap never came to me. A pronoun score of {score} at the last probe. *Searching is "
     "not finding.*"),
    "No snap for me in this run; my pronoun score ended at {score}.",
]
THRESHOLD = Bank("grew", [
    ("At step {at} my {role} score climbed to {score}, past the line of {threshold}; at step "
     "{prev_at} it had been {previous}. *So this is what I am for.*"),
    ("The probes marked it at step {at}: {role} score {score}, over the line of {threshold}, "
     "up from {previous} at step {prev_at}."),
    ("Step {at}: {score} on the {role} score, where the line stood at {threshold} and I had "
     "stood at {previous} (step {prev_at})."),
    ("By step {at} my {role} score read {score}, over {threshold}; one probe earlier, "
     "{previous}. *A binder.*"),
])
THRESHOLD_PLAIN = [
    ("At step {at} my {role} score stood at {score}, over the line of {threshold} (at step "
     "{prev_at}: {previous})."),
    ("The probes marked my {role} score at {score} at step {at}, past {threshold}; before, "
     "{previous}."),
    'Step {at}: my {role} score, {score}, over the line of {threshold}; at step {prev_at}, {previous}.',
    'At step {at} the {role} score read {score} against a line of {threshold}; the probe before, step {prev_at}, {previous}.',
]
THRESHOLD_FIRST = [  # the first probe already over the line: there is no "before"
    "At the very first probe, step {at}, my {role} score was already {score}, over {threshold}.",
    "From the first probe, step {at}, I scored {score} for {role}, past the line at {threshold}.",
    "My {role} score stood at {score} when the probes first looked, step {at}: over {threshold}.",
    "Step {at}, the first probe: {role} {score}, above {threshold} from the start.",
]
PLATEAU_LOST = Bank("not_learned", [
    ("From step {start_step} to step {end_step} the loss lay flat around {mean_loss}. At step "
     "{probe_at} I found the right noun for {acc} of pronouns. I was turning in that calm "
     "without knowing where to point."),
    ("The Fabric lay still between steps {start_step} and {end_step}, a mean loss of "
     "{mean_loss}. My argmax, at step {probe_at}, was right {acc} of the time. *Becalmed.*"),
    ("Steps {start_step} to {end_step}: a flat sea at {mean_loss}. At step {probe_at} I "
     "resolved {acc} of pronouns. *Where should I point?*"),
    ("A long calm, steps {start_step} to {end_step}, the loss near {mean_loss}; I still missed "
     "most pronouns ({acc} right at step {probe_at})."),
])
PLATEAU_WORKING = Bank("learned", [
    ("From step {start_step} to step {end_step} the loss lay flat around {mean_loss}, though I "
     "already resolved {acc} of pronouns at step {probe_at}: the calm was not mine to break."),
    ("The loss held near {mean_loss} from step {start_step} to {end_step}; by step {probe_at} I "
     "was right on {acc} of pronouns. What remained was other words' work."),
    ("A flat stretch, steps {start_step} to {end_step}, mean {mean_loss}. I was already working: "
     "{acc} of pronouns right at step {probe_at}."),
    ("Steps {start_step} to {end_step}, the loss near {mean_loss}; my argmax was right {acc} of "
     "the time by step {probe_at}."),
])
CLIPPED = Bank("clipped", [
    ("The Gradient ran wild in bursts, and the Engineers cut it back to {clip} on {n} steps; "
     "the highest swell measured {max_norm}."),
    ("Storms came: on {n} steps the gradient overran the clip of {clip}, once reaching "
     "{max_norm}, and the Engineers reined it in before it reached me."),
    "On {n} steps the Engineers trimmed the gale to {clip} before it touched me; its peak was {max_norm}.",
    "{n} steps came in above the clip of {clip} (the worst at {max_norm}) and were cut down.",
])

ECHO = Bank("exceeds", [
    ("At the first probe, step {at}, I leaned on the word just before each word more than on any "
     "antecedent: a previous-token score of {prev}, a pronoun score of {pron}. *Am I merely an "
     "echo of what came before?*"),
    ("When the probes first read me, step {at}, my previous-token score, {prev}, stood above my "
     "pronoun score, {pron}. *An echo of the last word, nothing more?*"),
    ("Step {at}: {prev} of my attention on the word just before, {pron} on antecedents. *Am I "
     "only an echo?*"),
    ("At first (step {at}) I was a follower of neighbours: previous-token {prev}, pronoun "
     "{pron}. *An echo, for now.*"),
])
NOT_ECHO = Bank("exceeds", [
    "By step {at} my pronoun score, {pron}, stood above my previous-token score, {prev}. *Not an echo: a binder.*",
    "At step {at}: pronoun {pron}, previous-token {prev}. *Not an echo any more.*",
    "Step {at} settled it: {pron} for pronouns against {prev} for the word before. *No echo.*",
    "By step {at}, {pron} on antecedents and {prev} on neighbours. *A binder, not an echo.*",
])
ALIGN = [
    ("In my own space, at step {at0}, a pronoun's query met its antecedent's key with a score of "
     "{ante0} and the other words' keys with {others0} on average; by step {at}, {ante} against "
     "{others}."),
    ("Query against key: at step {at0} the antecedent scored {ante0} and the rest {others0}; at "
     "step {at}, {ante} and {others}."),
    ("My queries for pronouns, read against the keys: {ante0} for the antecedent and {others0} "
     "for the others at step {at0}; {ante} and {others} at step {at}."),
    ("At step {at0} the antecedent's key answered my pronoun query with {ante0}, the other words "
     "with {others0}; at step {at}, {ante} and {others}."),
]
ALIGN_APART = Bank("opened", [
    "*Pronouns and their referents lined up, drifting apart from irrelevant words.*",
    "*The right key drew away from the rest, drifting apart from irrelevant words.*",
    "*The gap widened: the noun it means, drifting apart from everything else.*",
    "*Drifting apart from the irrelevant words, toward the one that matters.*",
])

# --- Specialisation -------------------------------------------------------------------------
SPECIALIST = [
    ("By the end I knew my name: a {role} head, {words}, with a score of {score}."),
    "What I became, the probes can prove: a {role} specialist, {words}. Score {score}.",
    "I am a {role} head, {words}; the probes give me {score}.",
    "My calling, measured: {role}, {words}, a score of {score}.",
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
ABLATION = Bank("hurt", [
    ("They silenced me to be sure. With my output zeroed the loss on the words after my role "
     "rose from {before} to {after} nats, and accuracy went from {acc_before} to {acc_after}. "
     "*Without me, that part of the cloth unravels.*"),
    ("The ablation is my proof: zero my output and the loss on the tokens I serve goes from "
     "{before} to {after} nats; accuracy from {acc_before} to {acc_after}."),
    ("Silence me and see: {before} to {after} nats on the words after my role, {acc_before} "
     "to {acc_after} in accuracy."),
    ("Zeroed, I am missed: the loss after my role {before} → {after} nats, accuracy "
     "{acc_before} → {acc_after}."),
])
ABLATION_BACKUP = Bank("harmless", [
    ("They silenced me alone, and almost nothing happened: the loss on the words after my "
     "role went from {before} to {after} nats, accuracy from {acc_before} to {acc_after}."),
    ("Zero me alone and the Fabric barely notices ({before} to {after} nats, {acc_before} to "
     "{acc_after} in accuracy)."),
    ("Alone, my silence costs almost nothing: {before} to {after} nats, accuracy "
     "{acc_before} to {acc_after}."),
    ("Silenced by myself I am barely missed: {before} → {after} nats, {acc_before} → "
     "{acc_after}."),
])
TEAM_HURT = Bank("hurt", [
    ("Silenced together with the others of my role, accuracy fell from {group_before} to "
     "{group_after}. *Alone I am not needed; together we are the thread.*"),
    ("Zero every head of my role at once and pronouns come apart: {group_before} resolved "
     "before, {group_after} after."),
    ("But silence all of us and the cloth tears: {group_before} → {group_after}. *A team, "
     "not a soloist.*"),
    "Together we matter: with the whole role silenced, {group_before} fell to {group_after}.",
])
REDUNDANT = [
    "I am not alone in it: {list} {verb} the same thread, so silencing me alone hurts less.",
    ("A backup runs beside me: {list} {verb} the very same stitch, and the Fabric leans on "
     "whichever of us the Dropout spares."),
    "{list} {verb} what I carry; each of us is the other's spare.",
    "The same thread runs through {list} as well. *If I snap, they hold.*",
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
FADE = [
    ("Then the schedule let the tide go out. The learning rate, {peak} at its height, was {lr} "
     "at step {at}; Adam's last steps moved my block by {ratio} of its size. The loss on "
     "fresh sentences settled at {val}."),
    ("Training ebbed: a learning rate of {lr} by step {at}, down from {peak}, and steps of "
     "{ratio} of my weights' size. The Fabric's judgment came to rest at {val} on fresh "
     "sentences."),
    ("At step {at} the rate was {lr} (its peak had been {peak}); my block moved {ratio} of "
     "itself per step. The loss on fresh sentences: {val}."),
    ("The last steps: rate {lr}, down from {peak}, my block moving {ratio} of its size, the "
     "Fabric at {val} on fresh sentences. Then stillness."),
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
    "\"{pronoun}\" too: \"{target}\", {weight}.",
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
    "specialist": [
        ("step {step}: I am a {role} head, score {score}; silence me and the loss on the words "
         "after my role goes from {ablation_loss_before} to {ablation_loss_after} nats."),
        ("step {step}: named a {role} head (score {score}); zeroed, the loss after my role "
         "reads {ablation_loss_after} nats instead of {ablation_loss_before}."),
    ],
    "specialist_backup": [
        ("step {step}: I am a {role} head, score {score}, one of a team: silence us all and "
         "accuracy goes from {group_ablation_acc_before_pct} to {group_ablation_acc_after_pct}."),
        ("step {step}: a {role} head in a team (score {score}); the whole team silenced, "
         "{group_ablation_acc_before_pct} → {group_ablation_acc_after_pct}."),
    ],
}
