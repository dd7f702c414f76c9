/* The secrets-run command line: sub-command dispatch, options and help. The commands
 * themselves live in the files named for them. */
#include <getopt.h>

#include "agent.h"
#include "output.h"
#include "backends.h"
#include "sandbox.h"

enum command {
        CMD_RUN, CMD_CHECK, CMD_PLAN, CMD_APPLY, CMD_ROTATE, CMD_REDACT, CMD_SCAN,
        CMD_STORE, CMD_AUDIT, CMD_DOCTOR, CMD_INIT, CMD_APPROVE, CMD_EXPLAIN, CMD_REPORT, CMD_VERSION, CMD_HELP, _CMD_MAX,
};

static const struct {
        const char *name;
        int (*run)(const struct options *o);   /* NULL: version and help, answered here */
        int error_status;      /* what "could not even start" exits with */
        const char *usage;
        const char *summary;
} commands[_CMD_MAX] = {
        [CMD_RUN]     = { "run", command_run, 125, "[run] [OPTIONS] [--] COMMAND [ARG...]", "run COMMAND with the secrets in scope" },
        [CMD_CHECK]   = { "check", command_check, 2, "check [OPTIONS]", "validate the manifest and policy" },
        [CMD_PLAN]    = { "plan", command_plan, 1, "plan [OPTIONS]", "compare the declared state with the backends" },
        [CMD_APPLY]   = { "apply", command_apply, 1, "apply [OPTIONS]", "create missing and rotate overdue generated secrets" },
        [CMD_ROTATE]  = { "rotate", command_rotate, 1, "rotate NAME [OPTIONS]", "rotate one generated secret now" },
        [CMD_REDACT]  = { "redact", command_redact, 2, "redact [OPTIONS]", "filter stdin to stdout, masking secrets" },
        [CMD_SCAN]    = { "scan", command_scan, 2, "scan [OPTIONS] PATH...", "scan files for leaked secrets" },
        [CMD_STORE]   = { "store", command_store, 1, "store init | set NAME | get NAME | list | rm NAME | history NAME | rollback NAME [--to N] | export [FILE] | import [FILE] [--replace] | import --dotenv FILE [--replace]", "the embedded encrypted store" },
        [CMD_AUDIT]   = { "audit", command_audit, 2, "audit verify FILE [--public-key F] | audit keygen [SECRET_KEY [PUBLIC_KEY]]", "check the audit log" },
        [CMD_DOCTOR]  = { "doctor", command_doctor, 1, "doctor [--format json]", "probe every sandbox layer on this host" },
        [CMD_INIT]    = { "init", command_init, 1, "init [-f PATH]", "write a commented starter secrets.yaml for the detected CI" },
        [CMD_APPROVE] = { "approve", command_approve, 1, "approve NAME [-e ENV] --key FILE [--identity NAME] [--print-payload] [-o FILE]", "sign a secret's binding with an SSH key" },
        [CMD_EXPLAIN] = { "explain", command_explain, 1, "explain [-e ENV] [-s STAGE] [--event EVENT] [--branch BRANCH] | explain --matrix [--branch BRANCH]", "show which secrets a context gets, and why not the others" },
        [CMD_REPORT]  = { "report", command_report, 1, "report [--audit-log FILE...] [--public-key F] -o FILE.html", "write one HTML page on every secret: ages, approvals, fetches, leaks, unread grants" },
        [CMD_VERSION] = { "version", NULL, 0, "version", "print the version" },
        [CMD_HELP]    = { "help", NULL, 0, "help [COMMAND]", "show help" },
};

#define ON(c) (1u << (c))
#define ALL_CMDS (~0u)
#define MANIFEST_CMDS (ON(CMD_RUN) | ON(CMD_CHECK) | ON(CMD_PLAN) | ON(CMD_APPLY) | ON(CMD_ROTATE) | \
                       ON(CMD_REDACT) | ON(CMD_SCAN) | ON(CMD_EXPLAIN))

enum {
        OPT_FORMAT = 0x100, OPT_ONLY, OPT_ON_LEAK, OPT_SANDBOX, OPT_NETWORK, OPT_TIMEOUT,
        OPT_ARTIFACTS, OPT_AUDIT_LOG, OPT_TTY, OPT_ALLOW_PTRACE, OPT_DRY_RUN, OPT_SECRET_FILE,
        OPT_VERSION, OPT_STORE, OPT_TO, OPT_PUBLIC_KEY, OPT_ALL, OPT_REPLACE, OPT_GUARD,
        OPT_RESULT_FILE, OPT_DOTENV, OPT_KEY, OPT_IDENTITY, OPT_PRINT_PAYLOAD, OPT_EVENT, OPT_BRANCH, OPT_MATRIX,
};

static const struct option long_options[] = {
        { "manifest",     required_argument, NULL, 'f' },
        { "env",          required_argument, NULL, 'e' },
        { "stage",        required_argument, NULL, 's' },
        { "format",       required_argument, NULL, OPT_FORMAT },
        { "quiet",        no_argument,       NULL, 'q' },
        { "verbose",      no_argument,       NULL, 'v' },
        { "help",         no_argument,       NULL, 'h' },
        { "version",      no_argument,       NULL, OPT_VERSION },
        { "only",         required_argument, NULL, OPT_ONLY },
        { "on-leak",      required_argument, NULL, OPT_ON_LEAK },
        { "sandbox",      required_argument, NULL, OPT_SANDBOX },
        { "network",      required_argument, NULL, OPT_NETWORK },
        { "guard",        required_argument, NULL, OPT_GUARD },
        { "timeout",      required_argument, NULL, OPT_TIMEOUT },
        { "artifacts",    required_argument, NULL, OPT_ARTIFACTS },
        { "audit-log",    required_argument, NULL, OPT_AUDIT_LOG },
        { "tty",          required_argument, NULL, OPT_TTY },
        { "allow-ptrace", no_argument,       NULL, OPT_ALLOW_PTRACE },
        { "dry-run",      no_argument,       NULL, OPT_DRY_RUN },
        { "result-file",  required_argument, NULL, OPT_RESULT_FILE },
        { "secret-file",  required_argument, NULL, OPT_SECRET_FILE },
        { "store",        required_argument, NULL, OPT_STORE },
        { "to",           required_argument, NULL, OPT_TO },
        { "public-key",   required_argument, NULL, OPT_PUBLIC_KEY },
        { "all",          no_argument,       NULL, OPT_ALL },
        { "replace",      no_argument,       NULL, OPT_REPLACE },
        { "dotenv",       required_argument, NULL, OPT_DOTENV },
        { "key",          required_argument, NULL, OPT_KEY },
        { "identity",     required_argument, NULL, OPT_IDENTITY },
        { "print-payload", no_argument,      NULL, OPT_PRINT_PAYLOAD },
        { "output",       required_argument, NULL, 'o' },
        { "event",        required_argument, NULL, OPT_EVENT },
        { "branch",       required_argument, NULL, OPT_BRANCH },
        { "matrix",       no_argument,       NULL, OPT_MATRIX },
        {}
};

/* Which commands each option applies to, and its help line. */
static const struct {
        int val;
        unsigned commands;
        const char *help;
} option_help[] = {
        { 'f', MANIFEST_CMDS | ON(CMD_STORE) | ON(CMD_INIT) | ON(CMD_APPROVE) | ON(CMD_REPORT), "-f, --manifest PATH     the manifest (else $SECRETS_RUN_MANIFEST, else the nearest secrets.yaml)" },
        { 'e', MANIFEST_CMDS, "-e, --env NAME          environment (else $SECRETS_RUN_ENV, else defaults.environment)" },
        { 'e', ON(CMD_APPROVE), "-e, --env NAME          approve: the environment the approval is for (else each protected one the secret reaches)" },
        { 's', MANIFEST_CMDS, "-s, --stage NAME        stage (else $SECRETS_RUN_STAGE, else defaults.stage)" },
        { OPT_FORMAT, ALL_CMDS, "    --format text|json  output format" },
        { 'q', ALL_CMDS, "-q, --quiet             only errors and warnings" },
        { 'v', ALL_CMDS, "-v, --verbose           say what is decided and why (never a value)" },
        { OPT_ONLY, ON(CMD_RUN), "    --only NAME[,NAME]  deliver only these secrets (each must be in scope)" },
        { OPT_ON_LEAK, ON(CMD_RUN) | ON(CMD_REDACT), "    --on-leak fail|warn what a leak does to the exit status" },
        { OPT_SANDBOX, ON(CMD_RUN), "    --sandbox strict|auto|off  sandbox layers to require" },
        { OPT_NETWORK, ON(CMD_RUN), "    --network on|off    off: private network namespace, loopback only" },
        { OPT_GUARD, ON(CMD_RUN), "    --guard on|off      watch the files the command writes (off: only changed files are scanned)" },
        { OPT_TIMEOUT, ON(CMD_RUN), "    --timeout DURATION  stop the command after DURATION (90s, 15m, 1h, 7d): exit 124" },
        { OPT_ARTIFACTS, ON(CMD_RUN), "    --artifacts GLOB    files to scan for leaks after the command (repeatable)" },
        { OPT_AUDIT_LOG, ON(CMD_RUN), "    --audit-log PATH    where to append the audit record" },
        { OPT_AUDIT_LOG, ON(CMD_REPORT), "    --audit-log PATH    an audit log to read, verified first (repeatable; else the one runs write)" },
        { OPT_TTY, ON(CMD_RUN), "    --tty auto|always|never  give the command a pseudo-terminal" },
        { OPT_ALLOW_PTRACE, ON(CMD_RUN), "    --allow-ptrace      let the command use ptrace (debuggers)" },
        { OPT_RESULT_FILE, ON(CMD_RUN), "    --result-file PATH  write the run's status and leak counts there as JSON (for CI steps)" },
        { OPT_ALL, ON(CMD_PLAN) | ON(CMD_APPLY), "    --all               every environment (else the one -e, $SECRETS_RUN_ENV or defaults.environment names)" },
        { OPT_DRY_RUN, ON(CMD_RUN) | ON(CMD_APPLY), "    --dry-run           run: resolve, gate and fetch, print what would be delivered; apply: plan" },
        { OPT_SECRET_FILE, ON(CMD_REDACT) | ON(CMD_SCAN), "    --secret-file [NAME=]FILE  a secret value from FILE (repeatable; no manifest needed)" },
        { OPT_STORE, ON(CMD_STORE), "    --store PATH        the store file (else the manifest's file backend, else .secrets-run/store)" },
        { OPT_TO, ON(CMD_STORE), "    --to N              rollback: the version to make current (else the previous one)" },
        { OPT_REPLACE, ON(CMD_STORE), "    --replace           import: take the document's history for names already in the store" },
        { OPT_DOTENV, ON(CMD_STORE), "    --dotenv FILE       import: the KEY=value lines of a .env file, each a secret (a new version with --replace)" },
        { OPT_PUBLIC_KEY, ON(CMD_AUDIT) | ON(CMD_REPORT), "    --public-key FILE   check every audit record's signature with this key" },
        { OPT_KEY, ON(CMD_APPROVE), "    --key FILE          the approver's SSH key (Ed25519, unencrypted; its .pub with --print-payload)" },
        { OPT_IDENTITY, ON(CMD_APPROVE), "    --identity NAME     whom the approval is from (else the approved_by entry allowed_signers lists the key for)" },
        { OPT_PRINT_PAYLOAD, ON(CMD_APPROVE), "    --print-payload     print the text to sign (with ssh-keygen's sign, namespace secrets-run-approval)" },
        { 'o', ON(CMD_APPROVE), "-o, --output FILE       approve: write the approval here (else the approvals beside the manifest)" },
        { 'o', ON(CMD_REPORT), "-o, --output FILE       the page to write" },
        { OPT_EVENT, ON(CMD_EXPLAIN), "    --event EVENT       the event to simulate: push, pull_request, schedule, tag, ... (else this job's)" },
        { OPT_BRANCH, ON(CMD_EXPLAIN), "    --branch BRANCH     the branch to simulate (else this job's or checkout's)" },
        { OPT_MATRIX, ON(CMD_EXPLAIN), "    --matrix            every environment, stage and event (push, pull_request, schedule, tag)" },
        { 'h', ALL_CMDS, "-h, --help              this help" },
};

static void print_help(enum command c) {
        if (c == CMD_HELP || c == CMD_VERSION) {
                printf("Usage: secrets-run [run] [OPTIONS] [--] COMMAND [ARG...]\n"
                       "       secrets-run COMMAND [OPTIONS]\n\n"
                       "Runs a CI step or local command with exactly the secrets its manifest allows,\n"
                       "delivered as in-memory files, fds or (opt-in) variables.\n\nCommands:\n");
                for (int i = 0; i < _CMD_MAX; i++)
                        printf("  %-8s %s\n", commands[i].name, commands[i].summary);
                printf("\nOptions:\n  -h, --help              this help\n"
                       "      --version           print the version\n"
                       "\nRun 'secrets-run COMMAND --help' for a command's options.\n");
                return;
        }
        printf("Usage: secrets-run %s\n\n%s.\n\nOptions:\n", commands[c].usage, commands[c].summary);
        for (size_t i = 0; i < ELEMENTSOF(option_help); i++)
                if (option_help[i].commands & ON(c))
                        printf("  %s\n", option_help[i].help);
}

/* --format json: the same, as one document: every command, or one command and its options. */
static int print_help_json(enum command c) {
        json_t *doc = json_object(), *list = json_array();
        if (!doc || !list) {
                json_decref(doc), json_decref(list);
                return -ENOMEM;
        }
        bool all = c == CMD_HELP || c == CMD_VERSION;
        _cleanup_free_ char *usage = strdup_printf("secrets-run %s", commands[all ? CMD_RUN : c].usage);
        json_object_set_new(doc, "usage", json_string(usage ? usage : ""));
        for (int i = 0; all && i < _CMD_MAX; i++)
                json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "name", commands[i].name, "usage",
                                                      commands[i].usage, "summary", commands[i].summary));
        for (size_t i = 0; !all && i < ELEMENTSOF(option_help); i++)
                if (option_help[i].commands & ON(c))
                        json_array_append_new(list, json_string(option_help[i].help));
        if (!all) {
                json_object_set_new(doc, "command", json_string(commands[c].name));
                json_object_set_new(doc, "summary", json_string(commands[c].summary));
        }
        json_object_set_new(doc, all ? "commands" : "options", list);
        _cleanup_(json_text_freep) char *text = json_dumps(doc, JSON_INDENT(2));
        json_decref(doc);
        if (!text)
                return -ENOMEM;
        printf("%s\n", text);
        return 0;
}

static void show_help(enum command c, enum output_format format) {
        if (format == FORMAT_JSON)
                (void) print_help_json(c);
        else
                print_help(c);
}

static int lookup_command(const char *word) {
        for (int i = 0; i < _CMD_MAX; i++)
                if (streq(word, commands[i].name))
                        return i;
        return -1;
}

/* The sub-command a mistyped word was probably meant to be: one edit away for short names,
 * two for longer ones (NULL if none is that close). */
static const char *near_command(const char *word) {
        const char *best = NULL;
        unsigned best_d = ~0u;
        for (int i = 0; i < _CMD_MAX; i++) {
                unsigned d = edit_distance(word, commands[i].name);
                unsigned limit = strlen(commands[i].name) <= 4 ? 1 : 2;
                if (d > 0 && d <= limit && d < best_d) {
                        best = commands[i].name;
                        best_d = d;
                }
        }
        return best;
}

/* The command of `run`, before anything is read or fetched: 0, or 126/127 said. */
static int check_run_command(const char *name) {
        char why[1024];
        int k = command_lookup(name, why, sizeof why);
        if (k == 0)
                return 0;
        if (k == -ENOMEM) {
                log_error("out of memory");
                return 125;
        }
        const char *near = k == -ENOENT && !strchr(name, '/') ? near_command(name) : NULL;
        if (near)
            log_error("'%s' is neither a sub-command nor a program in $PATH: nothing was fetched or run "
                      "[did you mean '%s'?]", name, near);
        else
                log_error("cannot execute '%s': %s", name, why);
        return k == -ENOENT ? 127 : 126;
}

/* `help TOPIC`: the command TOPIC names, or 2 and a did-you-mean for one that names none. */
static int help_topic(const struct options *o) {
        int sub = o->args ? lookup_command(o->args[0]) : CMD_HELP;
        if (sub < 0) {
                const char *near = near_command(o->args[0]);
                if (near)
                        log_error("help: no topic '%s' [did you mean '%s'?]", o->args[0], near);
                else
                        log_error("help: no topic '%s' [the topics are the commands: 'secrets-run help' lists them]",
                                  o->args[0]);
                return 2;
        }
        show_help((enum command) sub, o->format);
        return 0;
}

static const char *option_name(int val) {
        for (const struct option *o = long_options; o->name; o++)
                if (o->val == val)
                        return o->name;
        return "?";
}

static int parse_enum(const char *opt, const char *value, const char *const *names, int *ret) {
        for (int i = 0; names[i]; i++)
                if (streq(value, names[i])) {
                        *ret = i;
                        return 0;
                }
        log_error("--%s: '%s' is not one of the accepted values", opt, value);
        return -EINVAL;
}

static int split_commas(char ***list, const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (*t && strv_extend(list, t) < 0)
                        return -ENOMEM;
        return 0;
}

/* Applies one option. Options are accepted before or after the sub-command word. */
static int apply_option(struct options *o, enum command c, int opt, const char *arg, bool *ret_help,
                        bool *ret_version) {
        bool listed = false, applies = false;   /* an option may have a help line per command */
        for (size_t i = 0; i < ELEMENTSOF(option_help); i++)
                if (option_help[i].val == opt) {
                        listed = true;
                        applies |= (option_help[i].commands & ON(c)) != 0;
                }
        if (listed && !applies) {
                log_error("option --%s does not apply to '%s' [see 'secrets-run %s --help']",
                          option_name(opt), commands[c].name, commands[c].name);
                return -EINVAL;
        }
        int v, k;
        switch (opt) {
        case 'f': free(o->manifest); o->manifest = strdup(arg); break;
        case 'e': free(o->environment); o->environment = strdup(arg); break;
        case 's': free(o->stage); o->stage = strdup(arg); break;
        case 'q': log_level = LOG_LEVEL_QUIET; break;
        case 'v': log_level = LOG_LEVEL_VERBOSE; break;
        case 'h': *ret_help = true; break;
        case OPT_VERSION: *ret_version = true; break;
        case OPT_FORMAT:
                if ((k = parse_enum("format", arg, (const char *const[]) { "text", "json", NULL }, &v)) < 0)
                        return k;
                o->format = v == 1 ? FORMAT_JSON : FORMAT_TEXT;
                log_set_json(v == 1);   /* errors from here on are JSON too */
                break;
        case OPT_ONLY: return split_commas(&o->only, arg);
        case OPT_ON_LEAK:
                if ((k = parse_enum("on-leak", arg, (const char *const[]) { "fail", "warn", NULL }, &v)) < 0)
                        return k;
                o->on_leak = v == 0 ? ON_LEAK_FAIL : ON_LEAK_WARN;
                break;
        case OPT_SANDBOX:
                if ((k = parse_enum("sandbox", arg, (const char *const[]) { "auto", "strict", "off", NULL }, &v)) < 0)
                        return k;
                o->sandbox = v == 0 ? SANDBOX_AUTO : v == 1 ? SANDBOX_STRICT : SANDBOX_OFF;
                break;
        case OPT_NETWORK:
                if ((k = parse_enum("network", arg, (const char *const[]) { "off", "on", NULL }, &v)) < 0)
                        return k;
                o->network = v;
                break;
        case OPT_GUARD:
                if ((k = parse_enum("guard", arg, (const char *const[]) { "off", "on", NULL }, &v)) < 0)
                        return k;
                o->guard = v;
                break;
        case OPT_TIMEOUT: {
                uint64_t secs;
                if (parse_duration(arg, &secs) < 0 || secs == 0) {
                        log_error("--timeout: '%s' is not a duration [like 90s, 15m, 1h, 7d]", arg);
                        return -EINVAL;
                }
                o->timeout_ms = secs * 1000;
                break;
        }
        case OPT_ARTIFACTS: return strv_extend(&o->artifacts, arg);
        case OPT_AUDIT_LOG:
                free(o->audit_log);
                o->audit_log = strdup(arg);
                return strv_extend(&o->audit_logs, arg);
        case OPT_TTY:
                if ((k = parse_enum("tty", arg, (const char *const[]) { "never", "always", "auto", NULL }, &v)) < 0)
                        return k;
                o->tty = v == 2 ? -1 : v;
                break;
        case OPT_ALLOW_PTRACE: o->allow_ptrace = true; break;
        case OPT_DRY_RUN: o->dry_run = true; break;
        case OPT_RESULT_FILE: free(o->result_file); o->result_file = strdup(arg); break;
        case OPT_ALL: o->all = true; break;
        case OPT_REPLACE: o->replace = true; break;
        case OPT_DOTENV: free(o->dotenv); o->dotenv = strdup(arg); break;
        case OPT_SECRET_FILE: return strv_extend(&o->secret_files, arg);
        case OPT_STORE: free(o->store_path); o->store_path = strdup(arg); break;
        case OPT_TO: {
                char *end = NULL;
                errno = 0;
                unsigned long long n = strtoull(arg, &end, 10);
                if (errno || !end || *end || n == 0 || arg[0] == '-') {
                        log_error("--to: '%s' is not a version number (1 or more)", arg);
                        return -EINVAL;
                }
                o->store_to = n;
                break;
        }
        case OPT_PUBLIC_KEY: free(o->public_key); o->public_key = strdup(arg); break;
        case OPT_KEY: free(o->key); o->key = strdup(arg); break;
        case OPT_IDENTITY: free(o->identity); o->identity = strdup(arg); break;
        case OPT_PRINT_PAYLOAD: o->print_payload = true; break;
        case 'o': free(o->output); o->output = strdup(arg); break;
        case OPT_EVENT: free(o->event); o->event = strdup(arg); break;
        case OPT_BRANCH: free(o->branch); o->branch = strdup(arg); break;
        case OPT_MATRIX: o->matrix = true; break;
        default: return -EINVAL;
        }
        return 0;
}

static void options_done(struct options *o) {
        free(o->manifest);
        free(o->environment);
        free(o->stage);
        strv_free(o->only);
        strv_free(o->artifacts);
        free(o->audit_log);
        strv_free(o->secret_files);
        free(o->store_path);
        free(o->public_key);
        free(o->result_file);
        free(o->dotenv);
        strv_free(o->audit_logs);
        free(o->key);
        free(o->identity);
        free(o->output);
        free(o->event);
        free(o->branch);
        strv_free(o->args);
}

/* An error in the options is said in the format asked for, even when --format json comes after
 * the word it is about: the words up to "--" are looked at for it first. */
static void format_from_words(int argc, char **argv) {
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
                if (streq(argv[i], "--format=json") || (streq(argv[i], "--format") && i + 1 < argc &&
                                                          streq(argv[i + 1], "json")))
                        log_set_json(true);
}

/* getopt over argv[first..]: "+" stops at the first non-option (the command of `run`);
 * otherwise options and positional arguments may mix. */
static int parse_options(int argc, char **argv, int first, bool stop_at_word, enum command c,
                         struct options *o, bool *ret_help, bool *ret_version, int *ret_next) {
        int sub_argc = argc - first + 1;
        char **sub_argv = argv + first - 1;   /* getopt skips [0] */
        optind = 0;   /* full re-initialization for each pass */
        opterr = 0;
        int opt;
        while ((opt = getopt_long(sub_argc, sub_argv, stop_at_word ? "+:f:e:s:o:qvh" : ":f:e:s:o:qvh",
                                  long_options, NULL)) != -1) {
                if (opt == '?' || opt == ':')
                        format_from_words(sub_argc, sub_argv);
                if (opt == '?') {
                        if (optopt)
                                log_error("unknown option -%c [see 'secrets-run %s --help']", optopt, commands[c].name);
                        else
                                log_error("unknown option '%s' [see 'secrets-run %s --help']", sub_argv[optind - 1],
                                          commands[c].name);
                        return -EINVAL;
                }
                if (opt == ':') {
                        log_error("option '%s' needs a value", sub_argv[optind - 1]);
                        return -EINVAL;
                }
                int k = apply_option(o, c, opt, optarg, ret_help, ret_version);
                if (k < 0)
                        return k;
        }
        *ret_next = first + optind - 1;
        return 0;
}

int main(int argc, char **argv) {
        struct options o = { .on_leak = -1, .sandbox = -1, .network = TRI_UNSET, .guard = TRI_UNSET, .tty = -1 };
        bool help = false, version = false, sub_word = false;
        enum command c = CMD_RUN;
        int next, status, k;

        if (secret_init() < 0) {
                log_error("libsodium failed to initialize");
                return 125;
        }
        backends_init();   /* before any JSON value exists */
        output_init();     /* everything we write passes the masker from here on */
        /* before anything else, and before any secret exists */
        if ((k = supervisor_harden()) < 0) {
                log_error("cannot harden the process: %s", strerror(-k));
                return 125;
        }

        /* options before the sub-command word */
        if (parse_options(argc, argv, 1, true, CMD_RUN, &o, &help, &version, &next) < 0) {
                status = 125;
                goto out;
        }
        bool forced_run = next > 1 && streq(argv[next - 1], "--");
        if (next < argc && !forced_run) {
                int sub = lookup_command(argv[next]);
                if (sub >= 0) {
                        c = (enum command) sub;
                        sub_word = true;
                        next++;
                        /* run keeps "+" so the command's own options stay its own */
                        if (parse_options(argc, argv, next, c == CMD_RUN, c, &o, &help, &version, &next) < 0) {
                                status = commands[c].error_status;
                                goto out;
                        }
                        forced_run = c == CMD_RUN && next > 1 && streq(argv[next - 1], "--");
                }
        }
        for (int i = next; i < argc; i++)
                if (strv_extend(&o.args, argv[i]) < 0) {
                        status = 125;
                        goto out;
                }

        if (version || c == CMD_VERSION) {
                if (o.format == FORMAT_JSON)
                        printf("{\"version\": \"%s\"}\n", SECRETS_RUN_VERSION);
                else
                        printf("secrets-run %s\n", SECRETS_RUN_VERSION);
                status = 0;
                goto out;
        }
        if (c == CMD_HELP) {
                status = help_topic(&o);
                goto out;
        }
        if (help) {
                show_help(c == CMD_RUN && !sub_word && !o.args ? CMD_HELP : c, o.format);
                status = 0;
                goto out;
        }
        if (argc == 1) {
                print_help(CMD_HELP);
                status = 125;
                goto out;
        }
        /* nothing is read, fetched or audited for a command that cannot be run */
        if (c == CMD_RUN && o.args && (status = check_run_command(o.args[0])) != 0)
                goto out;

        status = commands[c].run(&o);
out:
        options_done(&o);
        /* what a command printed must have reached stdout: a full disk or a closed pipe is a
         * failure (run's stdout is the step's, and its status the step's) */
        k = output_done();
        if (k < 0 && status == 0 && c != CMD_RUN) {
                if (k != -EPIPE)   /* a reader that left (| head) needs no message */
                        log_error("writing to stdout: %s", strerror(-k));
                status = commands[c].error_status ? commands[c].error_status : 1;
        }
        return status;
}
