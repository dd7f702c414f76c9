/* Scope resolution: which secrets a run may receive in an environment, stage and CI context. */
#pragma once

#include "ci.h"
#include "manifest.h"

enum scope_verdict {
        SCOPE_IN = 0,
        SCOPE_OUT_ENVIRONMENT,    /* environment not in `environments` */
        SCOPE_OUT_STAGE,          /* stage not in `stages` */
        SCOPE_OUT_BRANCH,         /* `when.branches` not satisfied */
        SCOPE_OUT_EVENT,          /* `when.events` not satisfied */
        SCOPE_DENY_PROTECTED_PR,  /* protected environment on a pull-request event */
};

const char *scope_verdict_rule(enum scope_verdict v);  /* short rule name for messages/audit */

/* stage may be NULL (no stage). */
enum scope_verdict scope_evaluate(const struct manifest *m, const struct mf_secret *s,
                                  const char *environment, const char *stage,
                                  const struct ci_context *ci);

/* A stage (or, in a manifest that declares no environments, an environment) that no secret
 * and no default of the manifest names is most likely a typo, and it makes a run that gets
 * nothing: a warning, with the nearest name the manifest does use. Nothing is said when the
 * manifest names none at all (then the name decides nothing). */
void scope_warn_unnamed(const struct manifest *m, const char *environment, const char *stage);
