/*
 * func_presencestate_rs — C shim, ARI: the /ari/presenceStates handler tree, the presence:
 * event source, /ari/api-docs/resources.json with presenceStates listed, and the presence
 * board's page on Asterisk's HTTP server.
 *
 * No logic: the callbacks hand their arguments to Rust (src/ffi/ari.rs, ari_events.rs). The
 * res_ari and res_stasis functions are optional (src/shim/optional.h): the module loads and
 * works without those modules.
 */
#include "func_presencestate_rs.h"
#include "optional.h"

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
