"""The ensemble's own lines: one per moment (or per kind of moment across heads), each in the
voice of the component it belongs to. `_AFTER` variants answer the line before them.
A Bank names the fact it needs (narrate/claims.py)."""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank

TITLES = ["The Fabric: A Chorus of the Loom", "The Fabric, Told by Everyone Inside It",
          "One Weave, Many Voices", "The Fabric Learns: A Story in Many Voices"]
EPIGRAPH = [
    "We are the Fabric: every thread of it, speaking in turn.",
    "Many voices, one weave. Each of us tells the part it saw.",
    "We are the threads and the hands and the judgment. This is how we learned.",
    "Every number here was measured in this run; the voices are ours.",
]

# Several heads crossing the same role's line: told once, by the first of them.
THRESHOLD_GROUP = [
    ("I crossed the {role} line of {threshold} at step {step} with a score of {score}; "
     "{others} crossed it too: {rest}."),
    ("Step {step}: my {role} score reached {score}, over {threshold}. I was not alone for long: "
     "{rest}."),
    ("The probes drew a {role} line at {threshold}, and I crossed it at step {step} "
     "({score}); so did {rest}."),
    ("Me at step {step}, {role} score {score} against a line of {threshold}; and {rest}. "
     "*One line, and more than one of us past it.*"),
]
THRESHOLD_ONE = [
    "My {role} score crossed the line of {threshold} at step {step}: {score}.",
    "Step {step}: {role} score {score}, over the line at {threshold}. *A line crossed.*",
    "At step {step} the probes saw me past the {role} line of {threshold}, at {score}.",
    "The {role} line stood at {threshold}; at step {step} I stood at {score}.",
]
THRESHOLD_ITEM = "{who} at step {step} ({score})"
SNAP_GROUP = [
    ("At step {step}, in every story sentence, each pronoun's attention peaked on its own noun "
     "in me; the weakest, \"{pronoun}\", still gave \"{antecedent}\" {weight}. {rest} "
     "snapped the same way too."),
    ("Step {step}: \"{pronoun}\" pulled tight to \"{antecedent}\" in me, weight {weight}, and "
     "every other story pronoun with it. {rest} found the same knots."),
    ("I snapped at step {step}: {weight} from \"{pronoun}\" onto \"{antecedent}\", the "
     "weakest of my story pronouns. With me, or after: {rest}."),
    ("At step {step} every story pronoun in me found its noun (the weakest, \"{pronoun}\" to "
     "\"{antecedent}\", at {weight}); {rest} did the same."),
]
SNAP_ONE = [
    ("At step {step}, in every story sentence, each pronoun's attention peaked on its own noun "
     "in me; the weakest, \"{pronoun}\", gave \"{antecedent}\" {weight}."),
    "Step {step}: \"{pronoun}\" pulled tight to \"{antecedent}\", weight {weight}, and every story pronoun with it.",
    "At step {step} my gaze from \"{pronoun}\" found \"{antecedent}\" ({weight}), the weakest of my story pronouns.",
    "Step {step}, the snap: {weight} from \"{pronoun}\" onto \"{antecedent}\", and the rest as sure.",
]
SNAP_ITEM = "{who} at step {step}"
# {loss_move}, {acc_move}: figures.moved ("went from A to B", or "stayed at A")
# SPECIALIST_TEAM says each head alone is a spare ("little changes"): told only where no
# member's own ablation hurt (the moments' alone_hurts all false); else SPECIALIST_TEAM_KEY.
SPECIALIST_TEAM = Bank("hurt", [
    ("By step {step} the probes named us {role} heads: {heads}. Silence one of us alone and "
     "little changes; silence all of us and, on the words after each {role}, the loss "
     "{loss_move} nats and accuracy {acc_move}. *A team, not a soloist.*"),
    ("Step {step}: {heads}, each a {role} head, proven together: zeroed at once, on the words "
     "after each {role} the loss {loss_move} nats and accuracy {acc_move}."),
    ("We are {heads}, and the ablation names us {role} heads: silenced together, the loss "
     "after each {role} {loss_move} nats and accuracy {acc_move}."),
    ("At step {step} they silenced {heads} together: on the words after each {role} the loss "
     "{loss_move} nats, accuracy {acc_move}. *Alone we are spares; together we are the "
     "thread.*"),
])
# after a team's figure whose ablation silenced heads the run did not name ({them}: it/them)
TEAM_UNNAMED = [
    "That count silenced {extra} with us too, though the ablation did not name {them}.",
    "{extra}, never named, went silent in that count as well.",
    "The same silence took {extra} too, unnamed by the ablation.",
    "In that count {extra} fell silent beside us, though not one of the named.",
]
SPECIALIST_TEAM_KEY = Bank("hurt", [
    ("By step {step} the probes named us {role} heads: {heads}. Silence us together and, on the "
     "words after each {role}, the loss {loss_move} nats and accuracy {acc_move}. *A team.*"),
    SPECIALIST_TEAM[1],
    SPECIALIST_TEAM[2],
    ("At step {step} they silenced {heads} together: on the words after each {role} the loss "
     "{loss_move} nats, accuracy {acc_move}. *Together we are the thread.*"),
])
SPECIALIST_ALONE = Bank("hurt", [
    ("At step {step} the ablation named me a {role} head: silenced, the loss on the words after "
     "each {role} {loss_move} nats."),
    ("Step {step}: a {role} head, proven. Zero me and the loss on the words after each {role} "
     "{loss_move} nats."),
    ("The probes and the ablation agree at step {step}: I am a {role} head; without me, the "
     "loss after each {role} {loss_move} nats."),
    ("Step {step}, the proof: silence me and the loss on the words after each {role} "
     "{loss_move} nats."),
])
CLIP_BURST = Bank("clipped", [
    ("From step {start_step} to step {end_step} we cut the Gradient back {count} times; its "
     "peak was {max_norm} against our line of {clip}."),
    "Steps {start_step} to {end_step}: {count} clips, the Gradient peaking at {max_norm}.",
    ("We reined the Gradient in {count} times between steps {start_step} and {end_step}; at "
     "its worst it read {max_norm}, and we held it to {clip}."),
    ("Steps {start_step} to {end_step}: {count} times over our line of {clip}, up to "
     "{max_norm}. We cut each one."),
])
# the peak at least GALE times the line (claims.py)
CLIP_GALE = Bank("gale", [
    ("From step {start_step} to step {end_step} we cut the Gradient back {count} times; its "
     "peak was {max_norm} against our line of {clip}."),
    "Steps {start_step} to {end_step}: {count} clips, the Gradient peaking at {max_norm}. *We held the line.*",
    ("We reined the Gradient in {count} times between steps {start_step} and {end_step}; at "
     "its worst it read {max_norm}, and we held it to {clip}."),
    ("A gale, steps {start_step} to {end_step}: {count} times over our line of {clip}, up to "
     "{max_norm}. We cut each one."),
])
CLIP_AFTER_SPIKE = Bank("clipped", [
    ("We answered the surge: from step {start_step} to step {end_step}, {count} clips, the "
     "peak {max_norm} held to {clip}."),
    "And we cut it back: {count} clips, steps {start_step} to {end_step}, peak {max_norm}.",
    "Its squall met our line of {clip}: {count} cuts between steps {start_step} and {end_step}.",
    "We reined it in {count} times (steps {start_step} to {end_step}), {max_norm} at the worst.",
])
SPIKE = Bank("grew", [
    "At step {step} I surged to {grad_norm}, {factor} times the median of {median}.",
    "Step {step}: a squall out of a clear sky, {grad_norm} where {median} was usual.",
    "A spike at step {step}: {grad_norm}, {factor} times my recent median.",
    "Step {step}, I swelled to {grad_norm}; the steps before had been near {median}.",
])
VANISH = Bank("faded", [
    ("At step {step} I faded on the way down: {bottom} at the bottom against {top} at the top, "
     "a ratio of {ratio}."),
    "Step {step}: only {ratio} of me reached the bottom ({bottom} against {top}). *Adrift.*",
    "By step {step} my force dwindled to a ghost below: {bottom} at the bottom, {top} on top.",
    "Step {step}, a long fall: {top} at the top, {bottom} at the bottom, {ratio} of me left.",
])
PLATEAU_LOST = Bank("not_learned", [
    ("I lay flat at {mean_loss} from step {start_step} to {end_step}, while the best head "
     "resolved only {acc} of pronouns. *Becalmed.*"),
    "Steps {start_step} to {end_step}: becalmed at {mean_loss}; the pronouns were not yet learned ({acc}).",
    ("From step {start_step} to {end_step} I hovered at {mean_loss}. {acc} of pronouns resolved: "
     "*becalmed, waiting for a head to wake.*"),
    "A flat sea, steps {start_step} to {end_step}, near {mean_loss}; the heads resolved {acc}. *Becalmed.*",
])
PLATEAU_WORKING = Bank("learned", [
    ("From step {start_step} to {end_step} I slowed near {mean_loss}; the heads already "
     "resolved {acc} of pronouns, so this was the last slow mile, not a stall."),
    "Steps {start_step} to {end_step}: slow, near {mean_loss}, with {acc} of pronouns already resolved.",
    ("I flattened at {mean_loss} between steps {start_step} and {end_step}, the pronoun heads "
     "at {acc} already."),
    "A slow stretch near {mean_loss} (steps {start_step} to {end_step}); {acc} of pronouns already right.",
])
DROP = [
    "Then I fell, from {from_loss} to {to_loss}, by step {end_step}.",
    "The tide went out: {from_loss} down to {to_loss}, steps {start_step} to {end_step}.",
    "Steps {start_step} to {end_step}: {from_loss} to {to_loss}. *Something inside understood something.*",
    "By step {end_step} I had dropped from {from_loss} to {to_loss}.",
]
NEAR_FLOOR = [
    "At step {step} I read {val_loss} on fresh sentences; the floor is {floor}, a ratio of {ratio}.",
    "Step {step}: {val_loss} against the floor of {floor}. The language's own uncertainty is near.",
    "By step {step} the fresh sentences cost {val_loss}, {ratio} times the floor of {floor}.",
    "Step {step}, within reach of the floor: {val_loss} against {floor}.",
]
KNOCK = [
    "At step {step} I knocked {who}: {clean} clean, {dropped} under my mask of {rate_pct}.",
    "Step {step}: {who} stumbled in my dark, {clean} down to {dropped}. *What if this thread snaps?*",
    "I cut {rate_pct} at step {step}, and {who} fell from {clean} to {dropped}.",
    "Step {step}, my test: {who} at {clean} clean, {dropped} masked.",
]
RECOVERED_AFTER_KNOCK = [
    "{who} answered my cut: by step {step} it kept {dropped} under the mask against {clean} clean.",
    "By step {step} {who} had woven around my cuts: {dropped} masked, {clean} clean.",
    "Step {step}: {who}, masked, {dropped}; clean, {clean}. The knock of step {knock_step} mended.",
    "And {who} mended it by step {step}: {dropped} under the mask, {clean} without.",
]
DIVERGED = [
    "Step {step}: the loss became {loss}. We stopped, keeping the checkpoint of step {last_good_step}.",
    "At step {step} the Fabric tore (loss {loss}); step {last_good_step} is the last good weave.",
    "Divergence at step {step}: {loss}. The last sound checkpoint is step {last_good_step}.",
    "We lost the ship at step {step}, the loss {loss}; step {last_good_step} was kept.",
]
