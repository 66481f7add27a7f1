/* The one option parser of every command (cli.h): each command describes
 * its options once, as a table of cli_opt rows; the parser, `mtmi CMD
 * --help` and the option lists of docs/CLI.md all come from that table, so
 * help cannot list an option the parser refuses, nor the parser take one
 * help does not list.
 *
 * Syntax (getopt_long's, without its abbreviations and permutation
 * surprises): `--name VALUE`, `--name=VALUE`, `-o VALUE`, `-oVALUE`,
 * `-o=VALUE`; flags take no value; options and positional arguments in any
 * order; `--` ends the options; `-` alone is a positional argument or a
 * value (stdout for --json).  Long names match exactly: an abbreviation
 * accepted today would become ambiguous, and break a script, the day an
 * option with the same prefix is added.  A value that looks like an option
 * (`--json --quiet`) is a missing value, not a file named "--quiet"
 * (`--json=--quiet` says that).  Every error is one line naming the
 * command and the option, and the command exits with CLI_USAGE (2). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_usage(const cli_parser *p, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_error("%s: %s", p->cmd->name, msg);
    return CLI_USAGE;
}

void cli_parser_init(cli_parser *p, const cli_command *cmd, int argc, char **argv) {
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->argc = argc;
    p->argv = argv;
    p->i = 0; /* argv[0] is the command's name */
}

static const cli_opt *find_long(const cli_command *c, const char *name, size_t n) {
    for (const cli_opt *o = c->opts; o && o->id; o++)
        if (o->name && strlen(o->name) == n && !strncmp(o->name, name, n)) return o;
    return NULL;
}

static const cli_opt *find_short(const cli_command *c, char s) {
    for (const cli_opt *o = c->opts; o && o->id; o++)
        if (o->sname && o->sname == s) return o;
    return NULL;
}

/* "-x..." or "--x..." (but not "-", nor a negative number): an option,
 * never taken as the previous option's value. */
static int looks_like_option(const char *s) {
    if (s[0] != '-' || !s[1]) return 0;
    if (isdigit((unsigned char)s[1]) || (s[1] == '.' && isdigit((unsigned char)s[2]))) return 0;
    return 1;
}

/* The value's type and range (CLI_INT, CLI_REAL, CLI_CHOICE). */
static int check_value(cli_parser *p, const cli_opt *o, const char *v) {
    if (!v[0]) return cli_usage(p, "option '%s' needs a value (%s), got ''", p->opt, o->meta ? o->meta : "a value"), -1;
    if (o->type == CLI_INT) {
        char *e;
        errno = 0;
        long long x = strtoll(v, &e, 10);
        if (errno || e == v || *e || (double)x < o->lo || (double)x > o->hi) {
            cli_usage(p, "%s expects an integer in [%.0f, %.0f], got '%s'", p->opt, o->lo, o->hi, v);
            return -1;
        }
        p->num = (long)x;
    } else if (o->type == CLI_REAL) {
        char *e;
        errno = 0;
        double x = strtod(v, &e);
        if (errno || e == v || *e || !isfinite(x) || x < o->lo || x > o->hi) {
            cli_usage(p, "%s expects a number in [%g, %g], got '%s'", p->opt, o->lo, o->hi, v);
            return -1;
        }
        p->real = x;
    } else if (o->type == CLI_CHOICE) {
        const size_t n = strlen(v);
        for (const char *c = o->meta; *c;) {
            const char *bar = strchr(c, '|');
            const size_t k = bar ? (size_t)(bar - c) : strlen(c);
            if (k == n && !strncmp(c, v, n)) return 0;
            if (!bar) break;
            c = bar + 1;
        }
        char list[256];
        size_t len = 0;
        for (const char *c = o->meta; *c && len + 8 < sizeof list; c++) {
            if (*c != '|') list[len++] = *c;
            else len += (size_t)snprintf(list + len, sizeof list - len, strchr(c + 1, '|') ? ", " : " or ");
        }
        list[len] = 0;
        cli_usage(p, "%s expects %s, got '%s'", p->opt, list, v);
        return -1;
    }
    return 0;
}

int cli_next(cli_parser *p) {
    const cli_command *c = p->cmd;
    p->row = NULL;
    p->value = NULL;
    for (;;) {
        if (++p->i >= p->argc) return CLI_END;
        char *a = p->argv[p->i];
        if (p->dashdash || a[0] != '-' || !a[1]) { /* a positional argument */
            if (p->nargs >= c->max_args || p->nargs >= CLI_MAX_ARGS) {
                char syn[256];
                return cli_usage(p, "unexpected argument '%s' (usage: %s)", a, cli_synopsis(c, syn, sizeof syn)), CLI_ERROR;
            }
            p->args[p->nargs++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            p->dashdash = 1;
            continue;
        }
        const cli_opt *o;
        const char *val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            const size_t n = eq ? (size_t)(eq - name) : strlen(name);
            snprintf(p->opt, sizeof p->opt, "--%.*s", (int)MT_MIN(n, sizeof p->opt - 3), name);
            if (n == 4 && !strncmp(name, "help", 4) && !eq) {
                cli_help(c, stdout);
                return CLI_HELP;
            }
            if (!(o = find_long(c, name, n)))
                return cli_usage(p, "unknown option '%s' (try mtmi %s --help)", p->opt, c->name), CLI_ERROR;
            if (eq) {
                if (o->type == CLI_FLAG) return cli_usage(p, "option '%s' takes no value (got '%s')", p->opt, a), CLI_ERROR;
                val = eq + 1;
            }
        } else {
            snprintf(p->opt, sizeof p->opt, "-%c", a[1]);
            if (a[1] == 'h' && !a[2]) {
                cli_help(c, stdout);
                return CLI_HELP;
            }
            if (!(o = find_short(c, a[1]))) return cli_usage(p, "unknown option '%s' (try mtmi %s --help)", a, c->name), CLI_ERROR;
            if (a[2]) {
                if (o->type == CLI_FLAG) return cli_usage(p, "option '%s' takes no value (got '%s')", p->opt, a), CLI_ERROR;
                val = a[2] == '=' ? a + 3 : a + 2;
            }
        }
        if (o->type != CLI_FLAG && !val) {
            if (p->i + 1 >= p->argc)
                return cli_usage(p, "option '%s' needs a value (%s)", p->opt, o->meta ? o->meta : "a value"), CLI_ERROR;
            if (looks_like_option(p->argv[p->i + 1]))
                return cli_usage(p, "option '%s' needs a value (%s), not the option '%s' (%s=VALUE for a value starting with '-')",
                                 p->opt, o->meta ? o->meta : "a value", p->argv[p->i + 1], p->opt),
                       CLI_ERROR;
            val = p->argv[++p->i];
        }
        if (o->type != CLI_FLAG && check_value(p, o, val)) return CLI_ERROR;
        p->row = o;
        p->value = val;
        return o->id;
    }
}

/* ------------------------------------------------------------------ help */
enum { HELP_COL = 26 };

/* The option's spelling in help: "-o, --output DIR" / "    --frames N". */
static void spec_of(const cli_opt *o, char *buf, size_t cap) {
    int n = o->sname ? snprintf(buf, cap, "-%c, --%s", o->sname, o->name) : snprintf(buf, cap, "    --%s", o->name);
    if (o->type != CLI_FLAG && n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, " %s", o->meta ? o->meta : "VALUE");
}

/* Lines of text, each indented by `indent` (the first one too when first). */
static void put_lines(FILE *f, const char *text, int indent, int first) {
    for (const char *s = text; *s;) {
        const char *nl = strchr(s, '\n');
        const int n = nl ? (int)(nl - s) : (int)strlen(s);
        if (!first) fprintf(f, "%*s", indent, "");
        first = 0;
        fprintf(f, "%.*s\n", n, s);
        s += n + (nl ? 1 : 0);
    }
}

const char *cli_synopsis(const cli_command *c, char *buf, size_t cap) {
    snprintf(buf, cap, "mtmi %s%s%s%s", c->name, c->args[0] ? " " : "", c->args, c->opts && c->opts[0].id ? " [options]" : "");
    return buf;
}

void cli_help(const cli_command *c, FILE *f) {
    char syn[256];
    fprintf(f, "usage: %s\n", cli_synopsis(c, syn, sizeof syn));
    if (c->about && c->about[0]) {
        fprintf(f, "\n");
        put_lines(f, c->about, 0, 0);
    }
    fprintf(f, "\noptions:\n");
    char spec[128];
    for (const cli_opt *o = c->opts; o && o->id; o++) {
        spec_of(o, spec, sizeof spec);
        if ((int)strlen(spec) + 4 <= HELP_COL) { /* two spaces at least between the option and its help */
            fprintf(f, "  %-*s", HELP_COL - 2, spec);
            put_lines(f, o->help ? o->help : "", HELP_COL, 1);
        } else {
            fprintf(f, "  %s\n", spec);
            put_lines(f, o->help ? o->help : "", HELP_COL, 0);
        }
    }
    fprintf(f, "  %-*s%s\n", HELP_COL - 2, "-h, --help", "this help");
    if (c->footer && c->footer[0]) {
        fprintf(f, "\n");
        put_lines(f, c->footer, 0, 0);
    }
}

/* --------------------------------------------------------- value helpers */
long cli_cap(const cli_parser *p, long v, long cap, const char *why) {
    if (v > cap) {
        fprintf(stderr, "mtmi: warning: %s %ld is more than %s; using %ld (%s)\n", p->opt, v, why, cap, p->cmd->name);
        v = cap;
    }
    return v;
}

int cli_cap_threads(const cli_parser *p, long v) {
    /* More threads than cores only thrash: compute kernels never wait. */
    char why[64];
    const int n = mt_cpu_count();
    snprintf(why, sizeof why, "the %d core%s here", n, n == 1 ? "" : "s");
    return (int)cli_cap(p, v, n, why);
}

int cli_hxw(const char *s, int max, int *h, int *w) {
    mtmi_tensor t;
    if (cli_parse_shape(s, &t) || t.rank != 2 || t.dims[0] > max || t.dims[1] > max) return -1;
    *h = (int)t.dims[0];
    *w = (int)t.dims[1];
    return 0;
}

/* ------------------------------------------------------------ JSON reports */
static int g_json_fd = -1; /* the real stdout while fd 1 is stderr (--json -) */

void cli_json_stdout(const char *json) {
    if (!json || strcmp(json, "-") || g_json_fd >= 0) return;
    /* stdout is the report's: everything else printed goes to stderr. */
    fflush(stdout);
    g_json_fd = dup(STDOUT_FILENO);
    if (g_json_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        if (g_json_fd >= 0) close(g_json_fd);
        g_json_fd = -1;
    }
}

FILE *cli_json_open(const char *path, cli_json_file *j) {
    memset(j, 0, sizeof *j);
    if (!strcmp(path, "-")) {
        fflush(stdout);
        j->to_stdout = 1;
        j->f = g_json_fd >= 0 ? fdopen(dup(g_json_fd), "w") : stdout;
        if (!j->f) cli_error("cannot write the JSON report to stdout");
        return j->f;
    }
    j->f = mt_atomic_open(path, j->tmp, sizeof j->tmp);
    if (!j->f) cli_lib_error();
    return j->f;
}

int cli_json_close(cli_json_file *j, const char *path, int ok) {
    if (!j->f) return 1;
    if (j->to_stdout) {
        const int bad = fflush(j->f) != 0 || ferror(j->f);
        if (j->f != stdout) fclose(j->f);
        j->f = NULL;
        return bad || !ok ? (bad ? cli_error("cannot write the JSON report to stdout") : 1) : 0;
    }
    mtmi_status s = mt_atomic_commit(j->f, j->tmp, path, ok && !ferror(j->f));
    j->f = NULL;
    if (!ok) return 1;
    return s ? cli_lib_error() : 0;
}

int cli_check_report_paths(const char *cmd, const char *const *outs, int nouts, const char *const *inputs, int ninputs) {
    for (int i = 0; i < nouts; i++) {
        if (!outs[i] || !strcmp(outs[i], "-")) continue;
        if (mt_check_not_input(outs[i], inputs, ninputs)) return cli_lib_error();
        for (int k = 0; k < i; k++)
            if (outs[k] && strcmp(outs[k], "-") && (!strcmp(outs[k], outs[i]) || mt_same_file(outs[k], outs[i])))
                return cli_error("%s: '%s' is given for two outputs", cmd, outs[i]);
    }
    return 0;
}
