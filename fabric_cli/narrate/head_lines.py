"""The Head's phrase banks for the first half of its arc (titles, random beginnings, finding
its focus; the rest in head_lines_becoming.py), by beat. A Bank names the fact it needs
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
     "{arriving} at step {at}, and {adam} turned it into a step that moved my block by {ratio} "
     "of its own size. *Wrong. Move.* I moved."),
    ("The first correction reached Layer {layer} at step {at} carrying a norm of {arriving}; "
     "{adam}'s step shifted my block's weights by {ratio} of their length. A nudge, not a "
     "lesson."),
    ("Step {at}: the Gradient arrived at Layer {layer} at {arriving}. {Adam} made of it a step of "
     "{ratio} of my block's size. *This was wrong. Adjust.*"),
    ("At step {at} a tide of {arriving} reached my layer from above, and my block moved by "
     "{ratio} of itself. *I did not understand it. I felt it.*"),
]
# When the weight-change beat follows (head_weights.first_correction), it is the one that
# names "my first correction": the arrival then leaves the phrase to it. Same variants, in the
# same places, so the choice stays the one the seed made.
FIRST_TOUCH_BEFORE_WEIGHTS = [
    FIRST_TOUCH[0],
    ("The Gradient reached Layer {layer} at step {at} carrying a norm of {arriving}; {adam}'s "
     "step shifted my block's weights by {ratio} of their length. A nudge, not a lesson."),
    FIRST_TOUCH[2],
    FIRST_TOUCH[3],
]

# --- Finding My Focus ---------------------------------------------------------------------
NEIGHBOURS_FIRST = [
    "Around me other heads crossed their lines first: {list}. *I was still searching.*",
    "My neighbours woke before I did: {list}. Their threads pulled taut while mine still sagged.",
    "Others crossed their lines before me: {list}. *Not yet me.*",
    "I watched the others find their work first: {list}.",
]
NEIGHBOURS_ANY = [
    "Other heads were crossing their lines too: {list}. *The loom was busy.*",
    "I was not the only one waking: {list}.",
    "Around me the loom was waking: {list}.",
    "Elsewhere in the Fabric: {list}. *We were all learning at once.*",
]
NEIGHBOURS_ONLY = [  # this head crossed no line in the whole run
    "Around me other heads rose past their lines: {list}. *I rose past none.*",
    "Others crossed their lines: {list}. I crossed none.",
    "The loom woke around me: {list}. *Not my thread.*",
    "Elsewhere in the Fabric: {list}. *Not me.*",
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
SNAP_OTHER = [  # told by a head that never snapped: nothing here may say it did later
    ("The first snap, at step {at}, was not mine: {who} looked from \"{pronoun}\" to "
     "\"{antecedent}\" with weight {weight}. I felt the weave tighten somewhere else."),
    ("At step {at} {who} locked \"{pronoun}\" onto \"{antecedent}\" ({weight}); the "
     "snap belonged to another head."),
    ("The snap went to another head, {who}, at step {at}: \"{pronoun}\" to \"{antecedent}\", "
     "{weight}."),
    ("{who} found it, not I, at step {at}: {weight} of its attention from \"{pronoun}\" on "
     "\"{antecedent}\"."),
]
NO_SNAP = [
    ("No moment came when my gaze locked onto an antecedent in every story sentence; the "
     "chronicle holds none for me. By the last probe, step {at}, my pronoun score was "
     "{score}."),
    ("I waited for the moment the others talk about, the sudden pull from a pronoun to its "
     "noun. The chronicle records none for me; at the last probe, step {at}, {score} of my "
     "pronoun attention reached the right noun."),
    ("The snap never came to me. A pronoun score of {score} at the last probe, step {at}. "
     "*Searching is not finding.*"),
    "No snap for me in this run; at the last probe, step {at}, my pronoun score was {score}.",
]
THRESHOLD = Bank("grew", [
    ("At step {at} my {role} score climbed to {score}, past the line of {threshold}; at step "
     "{prev_at} it had been {previous}. *So this is what I am for.*"),
    ("The probes marked it at step {at}: {role} score {score}, over the line of {threshold}, "
     "up from {previous} at step {prev_at}."),
    ("Step {at}: {score} on the {role} score, where the line stood at {threshold} and I had "
     "stood at {previous} (step {prev_at})."),
    ("By step {at} my {role} score read {score}, over {threshold}; one probe earlier, "
     "{previous}. *A thread of my own to pull.*"),
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
    ("The Gradient came in above the line on {n} steps, and the Engineers cut it back to "
     "{clip}; the highest reading was {max_norm}."),
    ("On {n} steps the gradient overran the clip of {clip}, once reaching {max_norm}, and "
     "the Engineers reined it in before it reached me."),
    "On {n} steps the Engineers trimmed the Gradient to {clip} before it touched me; its peak was {max_norm}.",
    "{n} steps came in above the clip of {clip} (the worst at {max_norm}) and were cut down.",
])
# the peak at least GALE times the line (claims.py)
CLIPPED_GALE = Bank("gale", [
    ("The Gradient ran wild in bursts, and the Engineers cut it back to {clip} on {n} steps; "
     "the highest swell measured {max_norm}."),
    ("Storms came: on {n} steps the gradient overran the clip of {clip}, once reaching "
     "{max_norm}, and the Engineers reined it in before it reached me."),
    "On {n} steps the Engineers trimmed the gale to {clip} before it touched me; its peak was {max_norm}.",
    "{n} steps came in above the clip of {clip} (the worst at {max_norm}) and were cut down.",
])

ECHO = Bank("clear_margin", [  # the word before held at least twice the antecedents' share
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
    "*Pronouns and their referents lined up: the gap to the irrelevant words widened.*",
    "*The right key pulled further ahead of the rest.*",
    "*The gap widened between the noun it means and everything else.*",
    "*Further ahead of the irrelevant words now: the one that matters.*",
])

# --- My own weights, one step at a time (analysis/weights.py, narrate/head_weights.py) ---
# {rise}/{fall}: the largest element change up and down, each with {rise_at}/{fall_at}
# ("W_Q, row 12, column 3"); {mean}: the mean absolute change of all my weights that step.
FIRST_CORRECTION = Bank("both_ways", [
    ("My first correction came at step {at}: {rise} here, in {rise_at}; {fall} there, in "
     "{fall_at}. Over all my weights the step moved each by {mean} on average."),
    ("Step {at}, my first correction. The largest push up was {rise} ({rise_at}), the largest "
     "down {fall} ({fall_at}); the mean change, {mean}."),
    ("The first update touched me at step {at}: {rise} at {rise_at}, {fall} at {fall_at}, "
     "and {mean} per weight on average."),
    ("At step {at} the first correction arrived: {rise} here ({rise_at}), {fall} there "
     "({fall_at}), {mean} on average across my Q, K, V and O."),
])
FIRST_STILL = Bank("nothing", [
    "At step {at} the first update left my weights exactly as they were: a change of {mean}.",
    "Step {at}, the first update: my weights did not move at all ({mean} on average).",
    "The first step, {at}, passed me by: {mean} change in every one of my weights.",
    "Nothing of me moved at step {at}: the mean change was {mean}.",
])
EVEN_CORRECTION = Bank("even", [
    "*As far up as down: the same size of push each way.*",
    "*As far up as down, everywhere at once.*",
    "*A push as far up as down, no weight singled out.*",
    "*As far up as down: a nudge, not a decision.*",
])
LATE_CORRECTION = {
    "grew": Bank("grew", [
        ("By step {at} my corrections had grown: {rise} in {rise_at}, {fall} in {fall_at}, "
         "{mean} on average against {first_mean} at step {first_at}."),
        ("Late, at step {at}, one step still moved me {mean} per weight on average, larger "
         "than the {first_mean} of step {first_at}: {rise} here ({rise_at}), {fall} there "
         "({fall_at})."),
        ("One step's correction at step {at}: {rise} at most up ({rise_at}), {fall} down "
         "({fall_at}), a mean of {mean} per weight. Larger than my first correction's "
         "{first_mean} at step {first_at}."),
        ("Step {at} still reshaped me: {rise} at {rise_at}, {fall} at {fall_at}; {mean} on "
         "average, where step {first_at} had moved {first_mean}. *The corrections grew as I "
         "learned what to correct.*"),
    ]),
    "shrank": Bank("shrank", [
        ("By step {at} my corrections had shrunk: {rise} in {rise_at}, {fall} in {fall_at}, "
         "{mean} on average against {first_mean} at step {first_at}."),
        ("Late, at step {at}, a step moved me only {mean} per weight on average, smaller than "
         "the {first_mean} of step {first_at}: {rise} here ({rise_at}), {fall} there "
         "({fall_at})."),
        ("One step's correction at step {at}: {rise} at most up ({rise_at}), {fall} down "
         "({fall_at}), a mean of {mean} per weight. Smaller than my first correction's "
         "{first_mean} at step {first_at}. *Ripples now.*"),
        ("Step {at} reshaped me only a little: {rise} at {rise_at}, {fall} at {fall_at}; {mean} on "
         "average, where step {first_at} had moved {first_mean}."),
    ]),
    "steady": Bank("steady", [
        ("At step {at} a step still moved me {mean} per weight on average, much the same as "
         "the {first_mean} of step {first_at}: {rise} in {rise_at}, {fall} in {fall_at}."),
        ("One step's correction at step {at}: {rise} up ({rise_at}), {fall} down ({fall_at}), "
         "a mean of {mean} per weight; much the same "
         "size as my first correction, {first_mean} at step {first_at}."),
        ("Late, at step {at}, the corrections were much the same size as at step {first_at}: "
         "{mean} per weight against {first_mean}; {rise} here ({rise_at}), {fall} there "
         "({fall_at})."),
        ("By step {at}: {rise} at {rise_at}, {fall} at {fall_at}, {mean} on average, much the "
         "same as the {first_mean} of step {first_at}."),
    ]),
}
