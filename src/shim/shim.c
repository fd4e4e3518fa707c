/*
 * func_presencestate_rs — C shim.
 *
 * What must be C: AST_MODULE_INFO (its constructor registers the module with the loader, its
 * build-options checksum comes from these headers), the static structs Asterisk fills in at
 * registration (their layout changes between minor releases, so only the target's own headers
 * may define them), and wrappers for macros. No logic lives here: every decision is in Rust.
 */
#include "func_presencestate_rs.h"

/* ---- The dialplan function ---------------------------------------------------------------- */

static struct ast_custom_function presence_function = {
	.name = "PRESENCE_STATE",
	.read = fprs_read,
	.read2 = fprs_read2,
	.write = fprs_write,
};

int fprs_shim_register_function(void)
{
	return ast_custom_function_register(&presence_function);
}

int fprs_shim_unregister_function(void)
{
	return ast_custom_function_unregister(&presence_function);
}

/* ---- CLI ---------------------------------------------------------------------------------- */

static char *cli_result(int result)
{
	return result == RESULT_SUCCESS ? CLI_SUCCESS
		: result == RESULT_SHOWUSAGE ? CLI_SHOWUSAGE : CLI_FAILURE;
}

static char *cli_list(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	switch (cmd) {
	case CLI_INIT:
		e->command = "presencestate list [like]";
		e->usage =
			"Usage: presencestate list [like <text>]\n"
			"       List all custom presence states that have been set by using\n"
			"       the PRESENCE_STATE dialplan function, the CLI or AMI; with 'like',\n"
			"       only those whose name contains <text> (ignoring case).\n"
			"       Ends with a count line: '<total> custom presence states (<listed> shown)'.\n";
		return NULL;
	case CLI_GENERATE:
		return NULL;
	}
	return cli_result(fprs_cli_list(a->fd, a->argc, a->argv));
}

static char *cli_change(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	switch (cmd) {
	case CLI_INIT:
		e->command = "presencestate change";
		e->usage =
			"Usage: presencestate change <entity> <state>[,<subtype>[,message[,options]]]\n"
			"       Change a custom presence to a new state.\n"
			"       The possible values for the state are:\n"
			"NOT_SET | UNAVAILABLE | AVAILABLE | AWAY | XA | CHAT | DND\n"
			"Optionally, a custom subtype and message may be provided, along with any options\n"
			"accepted by func_presencestate. If the subtype or message provided contain spaces,\n"
			"be sure to enclose the data in quotation marks (\"\")\n"
			"With option 'e' the subtype and message are given base64-encoded; they are\n"
			"stored encoded and announced decoded, as with the dialplan function.\n"
			"\n"
			"Examples:\n"
			"       presencestate change CustomPresence:mystate1 AWAY\n"
			"       presencestate change CustomPresence:mystate1 AVAILABLE\n"
			"       presencestate change CustomPresence:mystate1 \"Away,upstairs,eating lunch\"\n"
			"       \n";
		return NULL;
	case CLI_GENERATE:
		return a->pos == e->args + 1 ? fprs_cli_complete_state(a->word, a->n) : NULL;
	}
	return cli_result(fprs_cli_change(a->fd, a->argc, a->argv));
}

static char *cli_show(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	switch (cmd) {
	case CLI_INIT:
		e->command = "presencestate show";
		e->usage =
			"Usage: presencestate show CustomPresence:<name>\n"
			"       Show one custom presence state: its state, subtype and message\n"
			"       (decoded), whether they are stored base64-encoded, and when and by\n"
			"       what (channel, AMI user, CLI, reload from AstDB) it last changed.\n";
		return NULL;
	case CLI_GENERATE:
		if (a->pos == e->args) {
			fprs_cli_complete_names(a->word);
		}
		return NULL;
	}
	return cli_result(fprs_cli_show(a->fd, a->argc, a->argv));
}

static char *cli_delete(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	switch (cmd) {
	case CLI_INIT:
		e->command = "presencestate delete";
		e->usage =
			"Usage: presencestate delete CustomPresence:<name>\n"
			"       Delete a custom presence state: it is removed from AstDB and from\n"
			"       memory, and subscribers are told it is now not_set.\n";
		return NULL;
	case CLI_GENERATE:
		if (a->pos == e->args) {
			fprs_cli_complete_names(a->word);
		}
		return NULL;
	}
	return cli_result(fprs_cli_delete(a->fd, a->argc, a->argv));
}

static char *cli_stats(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	switch (cmd) {
	case CLI_INIT:
		e->command = "presencestate stats";
		e->usage =
			"Usage: presencestate stats\n"
			"       Show what func_presencestate_rs did since it was loaded: states held\n"
			"       (in all and per state), writes, deletes, reads, provider queries,\n"
			"       refused writes by reason and AstDB failures.\n";
		return NULL;
	case CLI_GENERATE:
		return NULL;
	}
	return cli_result(fprs_cli_stats(a->fd, a->argc, a->argv));
}

#ifdef FPRS_SIP
static char *cli_publications(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	switch (cmd) {
	case CLI_INIT:
		e->command = "presencestate publications";
		e->usage =
			"Usage: presencestate publications\n"
			"       List the SIP PUBLISH presence publications held ([sip_publish]):\n"
			"       the name each sets, its endpoint, entity tag, seconds until it\n"
			"       expires, contact and the state it sets ('*': the one in force).\n";
		return NULL;
	case CLI_GENERATE:
		return NULL;
	}
	return cli_result(fprs_cli_publications(a->fd, a->argc, a->argv));
}
#endif

#ifdef FPRS_CLUSTER
static char *cli_cluster(struct ast_cli_entry *e, int cmd, struct ast_cli_args *a)
{
	switch (cmd) {
	case CLI_INIT:
		e->command = "presencestate cluster";
		e->usage =
			"Usage: presencestate cluster\n"
			"       Show whether presence is shared through Corosync CPG ([cluster] in\n"
			"       presencestate.conf): node id, group, members, messages, conflicts and\n"
			"       the last resynchronisation.\n";
		return NULL;
	case CLI_GENERATE:
		return NULL;
	}
	return cli_result(fprs_cli_cluster(a->fd, a->argc, a->argv));
}
#endif

static struct ast_cli_entry cli_entries[] = {
	AST_CLI_DEFINE(cli_list, "List currently known custom presence states"),
	AST_CLI_DEFINE(cli_change, "Change a custom presence state"),
	AST_CLI_DEFINE(cli_show, "Show one custom presence state and its last change"),
	AST_CLI_DEFINE(cli_delete, "Delete a custom presence state"),
	AST_CLI_DEFINE(cli_stats, "Show custom presence statistics"),
#ifdef FPRS_CLUSTER
	AST_CLI_DEFINE(cli_cluster, "Show the presence cluster's state"),
#endif
#ifdef FPRS_SIP
	AST_CLI_DEFINE(cli_publications, "List the SIP PUBLISH presence publications"),
#endif
};

int fprs_shim_register_cli(void)
{
	return ast_cli_register_multiple(cli_entries, ARRAY_LEN(cli_entries));
}

int fprs_shim_unregister_cli(void)
{
	return ast_cli_unregister_multiple(cli_entries, ARRAY_LEN(cli_entries));
}

void fprs_shim_cli_print(int fd, const char *bytes, size_t len)
{
	ast_cli(fd, "%.*s", (int) len, bytes);
}

/* ---- AMI actions (help text comes from doc/func_presencestate_rs.xml) -------------------- */

static int ami_set(struct mansession *s, const struct message *m)
{
	return fprs_ami_set(s, m);
}

static int ami_delete(struct mansession *s, const struct message *m)
{
	return fprs_ami_delete(s, m);
}

int fprs_shim_register_manager(void)
{
	if (ast_manager_register_xml("PresenceStateSet", EVENT_FLAG_CALL, ami_set)) {
		return -1;
	}
	if (ast_manager_register_xml("PresenceStateDelete", EVENT_FLAG_CALL, ami_delete)) {
		ast_manager_unregister("PresenceStateSet");
		return -1;
	}
	return 0;
}

void fprs_shim_unregister_manager(void)
{
	ast_manager_unregister("PresenceStateDelete");
	ast_manager_unregister("PresenceStateSet");
}

/* ---- Test framework ----------------------------------------------------------------------- */

#define FPRS_TEST(define_name, rust_fn, test_name, test_summary)        \
	AST_TEST_DEFINE(define_name)                                        \
	{                                                                   \
		switch (cmd) {                                                  \
		case TEST_INIT:                                                 \
			info->name = test_name;                                     \
			info->category = "/funcs/func_presencestate_rs/";          \
			info->summary = test_summary;                               \
			info->description = test_summary;                           \
			return AST_TEST_NOT_RUN;                                    \
		case TEST_EXECUTE:                                              \
			break;                                                      \
		}                                                               \
		return rust_fn(test);                                           \
	}

FPRS_TEST(test_parse_valid, fprs_test_parse_valid, "parse_valid_presence_data",
	"Every value the stock module accepts parses to the same fields")
FPRS_TEST(test_parse_invalid, fprs_test_parse_invalid, "parse_invalid_presence_data",
	"Invalid values, including the ones stock accepts by mistake, are refused")
FPRS_TEST(test_publish, fprs_test_publish, "presence_state_change",
	"A write is published to presence subscribers")
FPRS_TEST(test_base64, fprs_test_base64, "presence_state_base64",
	"A base64 write is stored encoded and published decoded")
FPRS_TEST(test_long_values, fprs_test_long_values, "presence_state_long_values",
	"Values of 100 KB are stored, published and read back whole, never cut")
FPRS_TEST(test_read_after_write, fprs_test_read_after_write, "presence_state_read_after_write",
	"A read right after two writes returns the second")

void fprs_shim_register_tests(void)
{
	AST_TEST_REGISTER(test_parse_valid);
	AST_TEST_REGISTER(test_parse_invalid);
	AST_TEST_REGISTER(test_publish);
	AST_TEST_REGISTER(test_base64);
	AST_TEST_REGISTER(test_long_values);
	AST_TEST_REGISTER(test_read_after_write);
}

/* ---- This module's use count (the loader keeps it private) ------------------------------ */

static int usecount_entry(const char *module, const char *description, int usecnt,
	const char *status, const char *like, enum ast_module_support_level support_level, void *data)
{
	if (!strcasecmp(module, AST_MODULE ".so")) {
		*(int *) data = usecnt;
	}
	return 0;
}

int fprs_shim_usecount(void)
{
	int usecount = 0;

	/* The loader only try-locks its list here, so this is safe inside our own unload. */
	ast_update_module_list_data(usecount_entry, "", &usecount);
	return usecount;
}

void fprs_shim_unregister_tests(void)
{
	AST_TEST_UNREGISTER(test_parse_valid);
	AST_TEST_UNREGISTER(test_parse_invalid);
	AST_TEST_UNREGISTER(test_publish);
	AST_TEST_UNREGISTER(test_base64);
	AST_TEST_UNREGISTER(test_long_values);
	AST_TEST_UNREGISTER(test_read_after_write);
}

void fprs_shim_test_status(struct ast_test *test, const char *bytes, size_t len)
{
	ast_test_status_update(test, "%.*s\n", (int) len, bytes);
}

struct stasis_subscription *fprs_shim_subscribe_presence(stasis_subscription_cb callback, void *data)
{
	return stasis_subscribe(ast_presence_state_topic_all(), callback, data);
}

struct stasis_subscription *fprs_shim_retire_subscription(struct stasis_subscription *sub)
{
	ao2_ref(sub, +1);
	stasis_unsubscribe(sub);
	return sub;
}

int fprs_shim_subscription_done(struct stasis_subscription *sub)
{
	return stasis_subscription_is_done(sub);
}

void fprs_shim_reap_subscription(struct stasis_subscription *sub)
{
	stasis_subscription_join(sub);
	ao2_ref(sub, -1);
}

int fprs_shim_presence_message(struct stasis_message *msg, enum ast_presence_state *state,
	const char **provider, const char **subtype, const char **message)
{
	struct ast_presence_state_message *presence;

	if (stasis_message_type(msg) != ast_presence_state_message_type()) {
		return -1;
	}
	presence = stasis_message_data(msg);
	*state = presence->state;
	*provider = presence->provider;
	*subtype = presence->subtype;
	*message = presence->message;
	return 0;
}

void fprs_shim_local_time(long long seconds, char *buf, size_t len)
{
	struct timeval when = { .tv_sec = seconds };
	struct ast_tm tm;

	ast_localtime(&when, &tm, NULL);
	ast_strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

/* ---- Configuration ---------------------------------------------------------------------- */

struct ast_config *fprs_shim_config_load(const char *file, int *status)
{
	struct ast_flags flags = { 0 };
	struct ast_config *cfg = ast_config_load(file, flags);

	if (cfg == CONFIG_STATUS_FILEINVALID) {
		*status = 2;
		return NULL;
	}
	*status = cfg ? 0 : 1;
	return cfg;
}

struct ast_variable *fprs_shim_variable(struct ast_variable *var, const char **name,
	const char **value, int *lineno)
{
	*name = var->name;
	*value = var->value;
	*lineno = var->lineno;
	return var->next;
}

/* ---- Announcing a state that is gone ------------------------------------------------------ */

int fprs_shim_publish_presence(enum ast_presence_state state, const char *provider,
	const char *subtype, const char *message)
{
	size_t provider_len = strlen(provider) + 1;
	size_t subtype_len = strlen(subtype) + 1;
	size_t message_len = strlen(message) + 1;
	struct ast_presence_state_message *presence;
	struct stasis_message *msg;
	char *text;

	if (!ast_presence_state_message_type()) {
		return -1;
	}
	/* The strings live in the object itself and it has no destructor: the Stasis cache keeps
	 * the message after this module is unloaded, and ao2 then frees it without our code. */
	presence = ao2_alloc_options(sizeof(*presence) + provider_len + subtype_len + message_len,
		NULL, AO2_ALLOC_OPT_LOCK_NOLOCK);
	if (!presence) {
		return -1;
	}
	text = (char *) (presence + 1);
	/* String fields are const pointers; Asterisk's own setters write them through a cast too. */
	*(const char **) &presence->provider = memcpy(text, provider, provider_len);
	*(const char **) &presence->subtype = memcpy(text + provider_len, subtype, subtype_len);
	*(const char **) &presence->message = memcpy(text + provider_len + subtype_len, message,
		message_len);
	presence->state = state;
	msg = stasis_message_create(ast_presence_state_message_type(), presence);
	ao2_ref(presence, -1);
	if (!msg) {
		return -1;
	}
	stasis_publish(ast_presence_state_topic_all(), msg);
	ao2_ref(msg, -1);
	return 0;
}

#ifndef FPRS_SIP
/* Built without the `sip` feature: no SIP PUBLISH service (src/shim/sip.c otherwise). */
int fprs_shim_have_sip(void)
{
	return 0;
}
#endif

/* ---- Memory, strings, logging ------------------------------------------------------------- */

void fprs_shim_log(int level, const char *file, int line, const char *function,
	const char *msg, size_t len)
{
	ast_log(level, file, line, function, "%.*s\n", (int) len, msg);
}

char *fprs_shim_strndup(const char *bytes, size_t len)
{
	char *copy = ast_malloc(len + 1);

	if (copy) {
		memcpy(copy, bytes, len);
		copy[len] = '\0';
	}
	return copy;
}

void fprs_shim_free(void *ptr)
{
	ast_free(ptr);
}

int fprs_shim_str_set(struct ast_str **buf, ssize_t maxlen, const char *bytes, size_t len)
{
	ast_str_set(buf, maxlen, "%.*s", (int) len, bytes);
	return ast_str_strlen(*buf) == len ? 0 : -1;
}

struct ast_str *fprs_shim_str_create(size_t init_len)
{
	return ast_str_create(init_len);
}

const char *fprs_shim_str_bytes(struct ast_str *buf, size_t *len)
{
	*len = ast_str_strlen(buf);
	return ast_str_buffer(buf);
}

/* ---- The module --------------------------------------------------------------------------- */

AST_MODULE_INFO(ASTERISK_GPL_KEY, AST_MODFLAG_LOAD_ORDER,
	FPRS_DESCRIPTION,        /* "PRESENCE_STATE (Rust) <version> <build id>", from build.rs */
	.support_level = AST_MODULE_SUPPORT_EXTENDED,
	.load = fprs_load,
	.unload = fprs_unload,
	.reload = fprs_reload,
	.load_pri = AST_MODPRI_DEVSTATE_PROVIDER,
	/* Loaded first when they are to be loaded at all; see src/shim/optional.h. */
#ifdef FPRS_SIP
	.optional_modules = "res_ari,res_stasis,res_pjsip",
#else
	.optional_modules = "res_ari,res_stasis",
#endif
);
