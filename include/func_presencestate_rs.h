/*
 * func_presencestate_rs — the boundary between the C shim and the Rust FFI layer.
 *
 * fprs_shim_*: one-line C wrappers over Asterisk macros and inline functions, which Rust cannot
 *              call (they inject __FILE__, AST_MODULE_SELF or are static inline).
 * fprs_*:      entry points implemented in Rust (src/ffi/), called by Asterisk through the
 *              static structs of src/shim/shim.c.
 *
 * Both the shim and bindgen read this header, so the two sides cannot disagree on a signature.
 */
#ifndef FUNC_PRESENCESTATE_RS_H
#define FUNC_PRESENCESTATE_RS_H

#include "asterisk.h"
#include "asterisk/utils.h"
#include "asterisk/stringfields.h"
#include "asterisk/astdb.h"
#include "asterisk/channel.h"
#include "asterisk/cli.h"
#include "asterisk/config.h"
#include "asterisk/devicestate.h"
#include "asterisk/localtime.h"
#include "asterisk/logger.h"
#include "asterisk/manager.h"
#include "asterisk/module.h"
#include "asterisk/pbx.h"
#include "asterisk/presencestate.h"
#include "asterisk/stasis.h"
#include "asterisk/strings.h"
#include "asterisk/test.h"
#include "asterisk/http.h"
#include "asterisk/json.h"
#include "asterisk/paths.h"
#include "asterisk/ari.h"
#include "asterisk/stasis_app.h"

/* ---- Implemented in Rust ------------------------------------------------------------------ */

enum ast_module_load_result fprs_load(void);
int fprs_unload(void);
int fprs_reload(void);

int fprs_read(struct ast_channel *chan, const char *cmd, char *data, char *buf, size_t len);
int fprs_read2(struct ast_channel *chan, const char *cmd, char *data, struct ast_str **buf, ssize_t len);
int fprs_write(struct ast_channel *chan, const char *cmd, char *data, const char *value);
enum ast_presence_state fprs_provider(const char *data, char **subtype, char **message);
/* The CustomPresence device-state provider: the device state presence <data> maps to. */
enum ast_device_state fprs_devstate_provider(const char *data);

/* CLI handlers after CLI_INIT: they return RESULT_SUCCESS, RESULT_SHOWUSAGE or RESULT_FAILURE. */
int fprs_cli_list(int fd, int argc, const char *const *argv);
int fprs_cli_change(int fd, int argc, const char *const *argv);
int fprs_cli_show(int fd, int argc, const char *const *argv);
int fprs_cli_delete(int fd, int argc, const char *const *argv);
int fprs_cli_stats(int fd, int argc, const char *const *argv);
#ifdef FPRS_CLUSTER
int fprs_cli_cluster(int fd, int argc, const char *const *argv);
#endif
/* The n-th state name completing word, from Asterisk's allocator, or NULL. */
char *fprs_cli_complete_state(const char *word, int n);
/* Offers every CustomPresence:<name> held that completes word (ast_cli_completion_add): one
 * pass, where answering for each n in turn would list every state n times. */
void fprs_cli_complete_names(const char *word);

/* AMI actions PresenceStateSet and PresenceStateDelete; 0 keeps the session open. */
int fprs_ami_set(struct mansession *s, const struct message *m);
int fprs_ami_delete(struct mansession *s, const struct message *m);

/* Test-framework tests (category /funcs/func_presencestate_rs/). */
enum ast_test_result_state fprs_test_parse_valid(struct ast_test *test);
enum ast_test_result_state fprs_test_parse_invalid(struct ast_test *test);
enum ast_test_result_state fprs_test_publish(struct ast_test *test);
enum ast_test_result_state fprs_test_base64(struct ast_test *test);
enum ast_test_result_state fprs_test_long_values(struct ast_test *test);
enum ast_test_result_state fprs_test_read_after_write(struct ast_test *test);

#ifdef FPRS_SIP
/* A PUBLISH with Event: presence from an identified endpoint, as src/shim/sip.c extracts it:
 * byte ranges into pjsip's message (not NUL-terminated; a NULL pointer has length 0). */
struct fprs_sip_request {
	const char *endpoint;
	size_t endpoint_len;
	const char *event;
	size_t event_len;
	int sip_uri;            /* the Request-URI is sip: or sips:; user is its user part */
	const char *user;
	size_t user_len;
	int has_if_match;
	const char *if_match;
	size_t if_match_len;
	int has_expires;
	const char *expires;
	size_t expires_len;
	const char *content_type;
	size_t content_type_len;
	int has_body;
	const char *body;
	size_t body_len;
	const char *contact;    /* the Contact header's value, else the source address */
	size_t contact_len;
};

/* The answer Rust fills in: headers with a negative value or an empty etag are left out. */
struct fprs_sip_response {
	int status;
	char etag[64];
	int expires;
	int min_expires;
	const char *accept;     /* a static string, or NULL */
};

/* 1: answer with *resp; 0: not ours (another event package, or [sip_publish] is off). */
int fprs_sip_publish(const struct fprs_sip_request *req, struct fprs_sip_response *resp);
int fprs_cli_publications(int fd, int argc, const char *const *argv);
#endif
/* ARI /ari/presenceStates (src/ffi/ari.rs). name: the decoded {name} path segment (NULL when
 * absent); get_params: query and form parameters; body: the JSON body (JSON null when none).
 * Each fills response with fprs_shim_ari_respond. */
void fprs_ari_list(struct ast_variable *get_params, struct ast_ari_response *response);
void fprs_ari_get(const char *name, struct ast_variable *get_params,
	struct ast_ari_response *response);
void fprs_ari_put(const char *name, struct ast_variable *get_params, struct ast_variable *headers,
	struct ast_json *body, struct ast_ari_response *response);
void fprs_ari_delete(const char *name, struct ast_variable *get_params,
	struct ast_variable *headers, struct ast_ari_response *response);
/* Adds presenceStates to Asterisk's API listing (resources.json) when its declaration is in
 * <data_dir>/rest-api/. */
void fprs_ari_amend_listing(struct ast_json *listing, const char *data_dir);
/* The presence: event source (src/ffi/ari_events.rs): whether id names presence one can
 * subscribe to; subscribe/unsubscribe/is_subscribed with id NULL or "" meaning every name. */
int fprs_ari_source_accepts(const char *id);
int fprs_ari_source_subscribe(const char *app, const char *id);
int fprs_ari_source_unsubscribe(const char *app, const char *id);
int fprs_ari_source_is_subscribed(const char *app, const char *id);
/* The presence board's page, static bytes of this module. */
const char *fprs_board_page(size_t *len);

/* ---- Implemented in the C shim ------------------------------------------------------------ */

/* ast_log at level (__LOG_WARNING, ...) of len bytes of msg, never as a format. */
void fprs_shim_log(int level, const char *file, int line, const char *function,
	const char *msg, size_t len);
/* A NUL-terminated copy of len bytes from Asterisk's allocator (ast_free frees it), or NULL. */
char *fprs_shim_strndup(const char *bytes, size_t len);
void fprs_shim_free(void *ptr);
/* A joinable thread named name (cut to 15 bytes) running run(arg), started through Asterisk
 * (src/shim/threads.c says why); NULL if none could be started. Join frees it. */
struct fprs_thread;
struct fprs_thread *fprs_shim_thread_start(const char *name, void (*run)(void *), void *arg);
void fprs_shim_thread_join(struct fprs_thread *thread);
/* Sets *buf to len bytes; 0 when all of them fit within maxlen, -1 otherwise. */
int fprs_shim_str_set(struct ast_str **buf, ssize_t maxlen, const char *bytes, size_t len);
struct ast_str *fprs_shim_str_create(size_t init_len);
const char *fprs_shim_str_bytes(struct ast_str *buf, size_t *len);
void fprs_shim_cli_print(int fd, const char *bytes, size_t len);
/* seconds since the epoch as local "YYYY-MM-DD HH:MM:SS TZ" into buf. */
void fprs_shim_local_time(long long seconds, char *buf, size_t len);

int fprs_shim_register_function(void);
int fprs_shim_unregister_function(void);
int fprs_shim_register_cli(void);
int fprs_shim_register_manager(void);
void fprs_shim_unregister_manager(void);
int fprs_shim_unregister_cli(void);
void fprs_shim_register_tests(void);
void fprs_shim_unregister_tests(void);
/* This module's use count: channels in its dialplan function, AMI actions running, ... */
int fprs_shim_usecount(void);

/* Loads a config file for this module: the config (ast_config_destroy frees it), or NULL with
 * *status 1 when the file is missing, 2 when Asterisk could not parse it. */
struct ast_config *fprs_shim_config_load(const char *file, int *status);
/* The name, value and line number of var; returns the next variable of its category. */
struct ast_variable *fprs_shim_variable(struct ast_variable *var, const char **name,
	const char **value, int *lineno);

void fprs_shim_test_status(struct ast_test *test, const char *bytes, size_t len);
struct stasis_subscription *fprs_shim_subscribe_presence(stasis_subscription_cb callback, void *data);
/* Publishes a presence-state message for provider as the presence core does for a change,
 * without asking providers (the core's own not_set path reads a '/' or '&' in a name as a
 * channel technology or a list and would announce nothing, or another state). 0 on success. */
int fprs_shim_publish_presence(enum ast_presence_state state, const char *provider,
	const char *subtype, const char *message);
/* Ends a subscription without waiting for it (unlike stasis_unsubscribe_and_join, safe in a
 * callback Asterisk makes while holding its own locks); the handle stays valid for
 * fprs_shim_subscription_done and must be given to fprs_shim_reap_subscription once. */
struct stasis_subscription *fprs_shim_retire_subscription(struct stasis_subscription *sub);
/* Non-zero once a retired subscription delivered its last message. */
int fprs_shim_subscription_done(struct stasis_subscription *sub);
/* Waits for a retired subscription's last message and releases the handle. */
void fprs_shim_reap_subscription(struct stasis_subscription *sub);
/* Fills the fields of a presence-state message; -1 for any other message type. */
int fprs_shim_presence_message(struct stasis_message *msg, enum ast_presence_state *state,
	const char **provider, const char **subtype, const char **message);

/* ---- Optional Asterisk APIs (shim.c: looked up at load, absent when their module is) ------- */

/* Looks up every res_pjsip function the SIP PUBLISH service uses; whether all are there (0
 * without the `sip` feature). Called at load, once res_pjsip (optional_modules) started. */
int fprs_shim_have_sip(void);
#ifdef FPRS_SIP
struct pjsip_rx_data;
struct pjsip_tx_data;
struct pjsip_module;
struct pjsip_endpoint;
struct ast_sip_endpoint;
int fprs_shim_sip_register_service(struct pjsip_module *module);
void fprs_shim_sip_unregister_service(struct pjsip_module *module);
/* The endpoint res_pjsip identified for rdata (a reference), or NULL for none or the
 * artificial endpoint of an unidentified request. */
struct ast_sip_endpoint *fprs_shim_sip_rdata_endpoint(struct pjsip_rx_data *rdata);
int fprs_shim_sip_create_response(struct pjsip_rx_data *rdata, int status, struct pjsip_tx_data **tdata);
void fprs_shim_sip_add_header(struct pjsip_tx_data *tdata, const char *name, const char *value);
int fprs_shim_sip_send_response(struct pjsip_rx_data *rdata, struct pjsip_tx_data *tdata,
	struct ast_sip_endpoint *endpoint);
struct pjsip_endpoint *fprs_shim_sip_endpoint(void);
/* Runs fn(data) in a PJSIP servant thread (pjlib needs its threads registered). */
int fprs_shim_sip_in_pjsip_thread(int (*fn)(void *), void *data);

/* src/shim/sip.c: checks the headers' layouts against the running libasteriskpj, then
 * registers the PUBLISH service. NULL on success, else why not. */
const char *fprs_shim_sip_register(void);
void fprs_shim_sip_unregister(void);
#endif
/* Looks up every res_ari / res_stasis function the ARI resource uses; non-zero when all are
 * there (res_ari and res_stasis loaded). */
int fprs_shim_have_ari(void);
/* Adds the /ari/presenceStates handler and registers the presence: event source; 0 on
 * success. Only when fprs_shim_have_ari(). */
int fprs_shim_register_ari(void);
void fprs_shim_unregister_ari(void);
/* Links (unlinks) /ari/api-docs/resources.json and /presence-board on Asterisk's HTTP server. */
void fprs_shim_link_http(void);
void fprs_shim_unlink_http(void);
/* How many ARI, event-source and HTTP callbacks of this module are running now. */
int fprs_shim_ari_busy(void);
/* Sets an ARI response: code, its reason (a static string) and message (stolen). */
void fprs_shim_ari_respond(struct ast_ari_response *response, int code, const char *text,
	struct ast_json *message);
/* stasis_app_send: 0 when app is registered (the event is then its, to add fields to). */
int fprs_shim_ari_send(const char *app, struct ast_json *event);
/* The names of every registered Stasis app (a JSON array), and one app as JSON. */
struct ast_json *fprs_shim_stasis_app_names(void);
struct ast_json *fprs_shim_stasis_app_json(const char *app);
/* A unix time in milliseconds as ARI writes dates. */
struct ast_json *fprs_shim_json_time(long long unix_ms);

#endif
