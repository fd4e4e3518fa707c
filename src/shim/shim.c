/*
 * func_presencestate_rs — C shim.
 *
 * What must be C: AST_MODULE_INFO (its constructor registers the module with the loader, its
 * build-options checksum comes from these headers), the static structs Asterisk fills in at
 * registration (their layout changes between minor releases, so only the target's own headers
 * may define them), and wrappers for macros. No logic lives here: every decision is in Rust.
 */
#include "func_presencestate_rs.h"

#include <dlfcn.h>

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

/* ---- Optional Asterisk APIs -------------------------------------------------------------- */
/*
 * Functions of modules this one works without (res_ari and res_stasis now). This module holds
 * no reference to them that the dynamic linker must resolve: each is a pointer, of the type
 * its header declares, looked up by name when the module loads, and fprs_shim_have_<feature>()
 * tells Rust whether all of a feature's were found before it registers anything that uses
 * them. So the module loads (dlopen succeeds, with BIND_NOW too) and works without them.
 *
 * Not weak symbols: the dynamic linker resolves those once, when the loader dlopens this
 * module, and at start-up the loader dlopens every module before it starts any, in directory
 * order, so this one is often dlopened before res_ari.so (whose symbols the loader makes
 * global only when it dlopens it): they stayed NULL, at start-up and after `module unload` and
 * `load` alike (the module stays mapped), with res_ari running. dlsym(RTLD_DEFAULT) at load
 * finds them wherever the loader put them, and AST_MODULE_INFO's .optional_modules makes
 * Asterisk start those modules before this one when they are to be loaded at all (and hold a
 * reference to them while this module is loaded: `module unload res_ari.so` is refused until
 * this module is unloaded, so the pointers cannot dangle).
 */
#define FPRS_OPTIONAL(name) static __typeof__(&name) optional_##name
#define RESOLVE(name) \
	((optional_##name = (__typeof__(&name)) dlsym(RTLD_DEFAULT, #name)) != NULL)

/* ARI (res_ari, res_stasis): /ari/presenceStates and the presence: event source. */
FPRS_OPTIONAL(ast_ari_add_handler);
FPRS_OPTIONAL(ast_ari_remove_handler);
FPRS_OPTIONAL(ast_ari_invoke);
FPRS_OPTIONAL(ast_ari_json_format);
FPRS_OPTIONAL(stasis_app_register_event_source);
FPRS_OPTIONAL(stasis_app_unregister_event_source);
FPRS_OPTIONAL(stasis_app_name);
FPRS_OPTIONAL(stasis_app_send);
FPRS_OPTIONAL(stasis_app_get_all);
FPRS_OPTIONAL(stasis_app_to_json);

int fprs_shim_have_ari(void)
{
	/* Each is looked up (&, not &&), so none is left from an earlier load. */
	return RESOLVE(ast_ari_add_handler) & RESOLVE(ast_ari_remove_handler)
		& RESOLVE(ast_ari_invoke) & RESOLVE(ast_ari_json_format)
		& RESOLVE(stasis_app_register_event_source)
		& RESOLVE(stasis_app_unregister_event_source) & RESOLVE(stasis_app_name)
		& RESOLVE(stasis_app_send) & RESOLVE(stasis_app_get_all) & RESOLVE(stasis_app_to_json);
}

/* ---- ARI: /ari/presenceStates, the presence: event source, the board --------------------- */

/*
 * Callbacks Asterisk may still be running when unload removes their registration (a request
 * that found the handler just before): each counts itself here, and unload waits for none.
 */
static int ari_busy;

static void ari_enter(void)
{
	__atomic_fetch_add(&ari_busy, 1, __ATOMIC_SEQ_CST);
}

static void ari_leave(void)
{
	__atomic_fetch_sub(&ari_busy, 1, __ATOMIC_SEQ_CST);
}

/* The decoded {name} path segment (ARI passes wildcards as path variables). */
static const char *ari_path_name(struct ast_variable *path_vars)
{
	return ast_variable_find_in_list(path_vars, "name");
}

static void ari_list_cb(struct ast_tcptls_session_instance *ser, struct ast_variable *get_params,
	struct ast_variable *path_vars, struct ast_variable *headers, struct ast_json *body,
	struct ast_ari_response *response)
{
	ari_enter();
	fprs_ari_list(get_params, response);
	ari_leave();
}

static void ari_get_cb(struct ast_tcptls_session_instance *ser, struct ast_variable *get_params,
	struct ast_variable *path_vars, struct ast_variable *headers, struct ast_json *body,
	struct ast_ari_response *response)
{
	ari_enter();
	fprs_ari_get(ari_path_name(path_vars), get_params, response);
	ari_leave();
}

static void ari_put_cb(struct ast_tcptls_session_instance *ser, struct ast_variable *get_params,
	struct ast_variable *path_vars, struct ast_variable *headers, struct ast_json *body,
	struct ast_ari_response *response)
{
	ari_enter();
	fprs_ari_put(ari_path_name(path_vars), get_params, headers, body, response);
	ari_leave();
}

static void ari_delete_cb(struct ast_tcptls_session_instance *ser, struct ast_variable *get_params,
	struct ast_variable *path_vars, struct ast_variable *headers, struct ast_json *body,
	struct ast_ari_response *response)
{
	ari_enter();
	fprs_ari_delete(ari_path_name(path_vars), get_params, headers, response);
	ari_leave();
}

/* The handler tree: /presenceStates and /presenceStates/{name}. */
static struct stasis_rest_handlers presence_states_name = {
	.path_segment = "name",
	.is_wildcard = 1,
	.callbacks = {
		[AST_HTTP_GET] = ari_get_cb,
		[AST_HTTP_PUT] = ari_put_cb,
		[AST_HTTP_DELETE] = ari_delete_cb,
	},
	.num_children = 0,
	.children = { },
};

static struct stasis_rest_handlers presence_states = {
	.path_segment = "presenceStates",
	.callbacks = {
		[AST_HTTP_GET] = ari_list_cb,
	},
	.num_children = 1,
	.children = { &presence_states_name, },
};

void fprs_shim_ari_respond(struct ast_ari_response *response, int code, const char *text,
	struct ast_json *message)
{
	response->message = message;
	response->response_code = code;
	response->response_text = text;
}

/* find: an ao2 copy of the id, which res_stasis releases after the subscribe. No destructor,
 * so freeing it runs no code of this module. */
static void *source_find(const struct stasis_app *app, const char *id)
{
	char *copy = NULL;

	ari_enter();
	if (fprs_ari_source_accepts(id)) {
		copy = ao2_alloc_options(strlen(id) + 1, NULL, AO2_ALLOC_OPT_LOCK_NOLOCK);
		if (copy) {
			strcpy(copy, id);
		}
	}
	ari_leave();
	return copy;
}

/* obj: what source_find returned, or NULL for every name (presence:, and subscribeAll). */
static int source_subscribe(struct stasis_app *app, void *obj)
{
	int res;

	ari_enter();
	res = fprs_ari_source_subscribe(optional_stasis_app_name(app), obj);
	ari_leave();
	return res;
}

static int source_unsubscribe(struct stasis_app *app, const char *id)
{
	int res;

	ari_enter();
	res = fprs_ari_source_unsubscribe(optional_stasis_app_name(app), id);
	ari_leave();
	return res;
}

static int source_is_subscribed(struct stasis_app *app, const char *id)
{
	int res;

	ari_enter();
	res = fprs_ari_source_is_subscribed(optional_stasis_app_name(app), id);
	ari_leave();
	return res;
}

/* No to_json: the Application model has no field for it, and Asterisk's development builds
 * refuse an Application object with a field its model does not document. */
static struct stasis_app_event_source presence_source = {
	.scheme = "presence:",
	.find = source_find,
	.subscribe = source_subscribe,
	.unsubscribe = source_unsubscribe,
	.is_subscribed = source_is_subscribed,
};

int fprs_shim_ari_send(const char *app, struct ast_json *event)
{
	return optional_stasis_app_send(app, event);
}

struct ast_json *fprs_shim_stasis_app_json(const char *app)
{
	return optional_stasis_app_to_json(app);
}

/* The names of every registered Stasis app, as a JSON array. */
struct ast_json *fprs_shim_stasis_app_names(void)
{
	struct ao2_container *apps = optional_stasis_app_get_all();
	struct ast_json *names = ast_json_array_create();
	struct ao2_iterator it;
	char *name;

	if (!apps || !names) {
		ao2_cleanup(apps);
		ast_json_unref(names);
		return NULL;
	}
	it = ao2_iterator_init(apps, 0);
	while ((name = ao2_iterator_next(&it))) {
		ast_json_array_append(names, ast_json_string_create(name));
		ao2_ref(name, -1);
	}
	ao2_iterator_destroy(&it);
	ao2_ref(apps, -1);
	return names;
}

struct ast_json *fprs_shim_json_time(long long unix_ms)
{
	struct timeval when = { .tv_sec = unix_ms / 1000, .tv_usec = (unix_ms % 1000) * 1000 };

	return ast_json_timeval(when, NULL);
}

/* Sends a response the way res_ari does: JSON in ARI's configured format. body may be NULL
 * (no content); bytes/len are sent instead when body is NULL and bytes is not. */
static void http_send(struct ast_tcptls_session_instance *ser, enum ast_http_method method,
	int code, const char *text, struct ast_str *headers, const char *content_type,
	const char *bytes, size_t len)
{
	struct ast_str *out = NULL;

	if (bytes) {
		out = ast_str_create(len + 1);
		if (!out) {
			ast_free(headers);
			ast_http_request_close_on_completion(ser);
			ast_http_error(ser, 500, "Server Error", "Out of memory");
			return;
		}
		ast_str_append(&out, 0, "%.*s", (int) len, bytes);
		ast_str_append(&headers, 0, "Content-Type: %s\r\n", content_type);
	}
	ast_http_send(ser, method, code, text, headers, out, 0, 0);
}

/*
 * GET /ari/api-docs/resources.json: Asterisk's own listing (res_ari authenticates the request
 * and reads the file), with presenceStates added by Rust when its declaration is installed.
 */
static int docs_listing_cb(struct ast_tcptls_session_instance *ser, const struct ast_http_uri *urih,
	const char *uri, enum ast_http_method method, struct ast_variable *get_params,
	struct ast_variable *headers)
{
	struct ast_ari_response response = { .fd = -1, 0 };
	char *text = NULL;

	ari_enter();
	response.headers = ast_str_create(64);
	if (!response.headers) {
		ast_http_request_close_on_completion(ser);
		ast_http_error(ser, 500, "Server Error", "Out of memory");
		ari_leave();
		return 0;
	}
	optional_ast_ari_invoke(ser, ARI_INVOKE_SOURCE_REST, urih, "api-docs/resources.json", method,
		get_params, headers, ast_json_null(), &response);
	if (response.response_code == 200) {
		fprs_ari_amend_listing(response.message, ast_config_AST_DATA_DIR);
	}
	if (response.message) {
		text = ast_json_dump_string_format(response.message, optional_ast_ari_json_format());
	}
	http_send(ser, method, response.response_code ? response.response_code : 500,
		response.response_text ? response.response_text : "Server Error", response.headers,
		"application/json", text, text ? strlen(text) : 0);
	ast_json_free(text);
	ast_json_unref(response.message);
	ari_leave();
	return 0;
}

static struct ast_http_uri docs_listing_uri = {
	.description = "ARI API listing, with /ari/presenceStates (func_presencestate_rs)",
	.uri = "ari/api-docs/resources.json",
	.callback = docs_listing_cb,
	.has_subtree = 0,
	.no_decode_uri = 1,
	.key = __FILE__,
};

/* The presence board: one static page (Rust holds its bytes); it reads and writes presence
 * through ARI with the credentials its user types in, so it holds no data itself. */
static int board_cb(struct ast_tcptls_session_instance *ser, const struct ast_http_uri *urih,
	const char *uri, enum ast_http_method method, struct ast_variable *get_params,
	struct ast_variable *headers)
{
	struct ast_str *reply_headers;
	const char *page;
	size_t len = 0;

	ari_enter();
	if (method != AST_HTTP_GET && method != AST_HTTP_HEAD) {
		ast_http_error(ser, 405, "Method Not Allowed", "The presence board is read with GET");
		ari_leave();
		return 0;
	}
	reply_headers = ast_str_create(128);
	if (!reply_headers) {
		ast_http_request_close_on_completion(ser);
		ast_http_error(ser, 500, "Server Error", "Out of memory");
		ari_leave();
		return 0;
	}
	page = fprs_board_page(&len);
	ast_str_append(&reply_headers, 0,
		"Cache-Control: no-cache\r\n"
		"X-Content-Type-Options: nosniff\r\n"
		"Content-Security-Policy: default-src 'none'; connect-src 'self'; "
		"style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
		"frame-ancestors 'none'\r\n");
	http_send(ser, method, 200, "OK", reply_headers, "text/html; charset=utf-8", page, len);
	ari_leave();
	return 0;
}

static struct ast_http_uri board_uri = {
	.description = "Presence board (func_presencestate_rs)",
	.uri = "presence-board",
	.callback = board_cb,
	.has_subtree = 0,
	.key = __FILE__,
};

int fprs_shim_register_ari(void)
{
	if (optional_ast_ari_add_handler(&presence_states)) {
		return -1;
	}
	optional_stasis_app_register_event_source(&presence_source);
	return 0;
}

void fprs_shim_link_http(void)
{
	ast_http_uri_link(&docs_listing_uri);
	ast_http_uri_link(&board_uri);
}

void fprs_shim_unlink_http(void)
{
	ast_http_uri_unlink(&board_uri);
	ast_http_uri_unlink(&docs_listing_uri);
}

void fprs_shim_unregister_ari(void)
{
	optional_stasis_app_unregister_event_source(&presence_source);
	optional_ast_ari_remove_handler(&presence_states);
}

int fprs_shim_ari_busy(void)
{
	return __atomic_load_n(&ari_busy, __ATOMIC_SEQ_CST);
}

/* ---- The module --------------------------------------------------------------------------- */

AST_MODULE_INFO(ASTERISK_GPL_KEY, AST_MODFLAG_LOAD_ORDER,
	"PRESENCE_STATE() and the CustomPresence provider (Rust)",
	.support_level = AST_MODULE_SUPPORT_EXTENDED,
	.load = fprs_load,
	.unload = fprs_unload,
	.reload = fprs_reload,
	.load_pri = AST_MODPRI_DEVSTATE_PROVIDER,
	/* Loaded first when they are to be loaded at all; see "Optional Asterisk APIs". */
	.optional_modules = "res_ari,res_stasis",
);
