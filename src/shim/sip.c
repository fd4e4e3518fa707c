/*
 * func_presencestate_rs — C shim, SIP PUBLISH (feature `sip`; compiled against the pjproject
 * headers scripts/pjproject-headers configured as Asterisk built libasteriskpj).
 *
 * Our own PJSIP service rather than res_pjsip_pubsub's publish handler API: that API routes a
 * PUBLISH only when its Request-URI user has an `inbound-publication` section of its own (500
 * users, 500 sections), has no Min-Expires / 423, no cap on Expires and no check of which
 * names an endpoint may set. The service sits at PJSIP_MOD_PRIORITY_APPLICATION - 1: after
 * res_pjsip's distributor, which identifies the endpoint (Endpoint Identifier, TSX_LAYER - 3)
 * and digest-authenticates it (Request Authenticator, APPLICATION - 2: a request that fails
 * is answered 401/403 there and never reaches us; an unidentified one gets the artificial
 * endpoint, which always fails), and before res_pjsip_pubsub (APPLICATION), which still
 * answers every other event package. It takes only PUBLISH with Event: presence.
 *
 * No logic: this file turns a pjsip message into byte slices for Rust (src/ffi/sip.rs) and
 * Rust's answer into a response. The res_pjsip functions are optional (src/shim/optional.h):
 * the module loads and works without res_pjsip; pjproject's own functions are always there
 * (the asterisk binary links libasteriskpj).
 */
#include "func_presencestate_rs.h"

#include <pjsip.h>
#include <pjlib.h>

#include "asterisk/res_pjsip.h"

#include "optional.h"

/* Headers configured any other way give other struct layouts (config_site.h): refuse. */
#if !defined(PJ_AUTOCONF) || PJSIP_MAX_MODULE != 38 || PJ_MAX_HOSTNAME != 256 \
	|| PJSIP_MAX_URL_SIZE != 512 || PJSIP_MAX_PKT_LEN != 65535 || PJSIP_SAFE_MODULE != 0
#error "pjproject headers not configured with Asterisk's config_site.h (PJSIP_MAX_MODULE 38, PJ_MAX_HOSTNAME 256, PJSIP_MAX_URL_SIZE 512, PJSIP_MAX_PKT_LEN 65535, -DPJ_AUTOCONF=1): make them with scripts/pjproject-headers and set PJPROJECT_DIR"
#endif

/* ---- res_pjsip's functions (optional: src/shim/optional.h) ----------------------------- */

FPRS_OPTIONAL(ast_sip_register_service);
FPRS_OPTIONAL(ast_sip_unregister_service);
FPRS_OPTIONAL(ast_pjsip_rdata_get_endpoint);
FPRS_OPTIONAL(ast_sip_get_artificial_endpoint);
FPRS_OPTIONAL(ast_sip_create_response);
FPRS_OPTIONAL(ast_sip_add_header);
FPRS_OPTIONAL(ast_sip_send_stateful_response);
FPRS_OPTIONAL(ast_sip_get_pjsip_endpoint);
FPRS_OPTIONAL(__ast_sip_push_task_wait_servant);

int fprs_shim_have_sip(void)
{
	/* Each is looked up (&, not &&), so none is left from an earlier load. */
	return RESOLVE(ast_sip_register_service) & RESOLVE(ast_sip_unregister_service)
		& RESOLVE(ast_pjsip_rdata_get_endpoint) & RESOLVE(ast_sip_get_artificial_endpoint)
		& RESOLVE(ast_sip_create_response) & RESOLVE(ast_sip_add_header)
		& RESOLVE(ast_sip_send_stateful_response) & RESOLVE(ast_sip_get_pjsip_endpoint)
		& RESOLVE(__ast_sip_push_task_wait_servant);
}

int fprs_shim_sip_register_service(pjsip_module *module)
{
	return optional_ast_sip_register_service(module);
}

void fprs_shim_sip_unregister_service(pjsip_module *module)
{
	optional_ast_sip_unregister_service(module);
}

struct ast_sip_endpoint *fprs_shim_sip_rdata_endpoint(pjsip_rx_data *rdata)
{
	struct ast_sip_endpoint *endpoint = optional_ast_pjsip_rdata_get_endpoint(rdata);
	struct ast_sip_endpoint *artificial = optional_ast_sip_get_artificial_endpoint();

	if (endpoint && endpoint == artificial) {
		ao2_ref(endpoint, -1);
		endpoint = NULL;
	}
	ao2_cleanup(artificial);
	return endpoint;
}

int fprs_shim_sip_create_response(pjsip_rx_data *rdata, int status, pjsip_tx_data **tdata)
{
	return optional_ast_sip_create_response(rdata, status, NULL, tdata) == PJ_SUCCESS ? 0 : -1;
}

void fprs_shim_sip_add_header(pjsip_tx_data *tdata, const char *name, const char *value)
{
	optional_ast_sip_add_header(tdata, name, value);
}

int fprs_shim_sip_send_response(pjsip_rx_data *rdata, pjsip_tx_data *tdata,
	struct ast_sip_endpoint *endpoint)
{
	return optional_ast_sip_send_stateful_response(rdata, tdata, endpoint) == PJ_SUCCESS ? 0 : -1;
}

pjsip_endpoint *fprs_shim_sip_endpoint(void)
{
	return optional_ast_sip_get_pjsip_endpoint();
}

int fprs_shim_sip_in_pjsip_thread(int (*fn)(void *), void *data)
{
	return optional___ast_sip_push_task_wait_servant(NULL, fn, data, __FILE__, __LINE__,
		__PRETTY_FUNCTION__);
}

static const pjsip_method publish_method = { PJSIP_OTHER_METHOD, { "PUBLISH", 7 } };

/* The value of the first header named name (or short_name), printed by pjsip whatever its
 * parsed type: "Name: value" with the name and ": " cut. Length, or -1 when absent. */
static int header_value(pjsip_msg *msg, const char *name, const char *short_name, char *buf,
	size_t size, const char **value)
{
	pj_str_t long_str = pj_str((char *) name);
	pj_str_t short_str = pj_str((char *) (short_name ? short_name : name));
	void *hdr = pjsip_msg_find_hdr_by_names(msg, &long_str, &short_str, NULL);
	int len;
	char *colon;

	if (!hdr || (len = pjsip_hdr_print_on(hdr, buf, size - 1)) < 0) {
		return -1;
	}
	buf[len] = '\0';
	colon = memchr(buf, ':', len);
	if (!colon) {
		return -1;
	}
	colon++;
	while (*colon == ' ' || *colon == '\t') {
		colon++;
	}
	*value = colon;
	return len - (colon - buf);
}

/* Whether rdata's fields sit where our headers put them: the message buffer lies inside the
 * packet buffer in every rdata pjsip builds or clones. A pkt_info of another size (a
 * different PJSIP_MAX_PKT_LEN) would move msg_info and fail this, before any dereference. */
static int rdata_layout_ok(pjsip_rx_data *rdata)
{
	const char *buf = rdata->msg_info.msg_buf;

	return buf >= rdata->pkt_info.packet
		&& buf < rdata->pkt_info.packet + sizeof(rdata->pkt_info.packet)
		&& rdata->msg_info.len >= 0 && rdata->msg_info.len <= PJSIP_MAX_PKT_LEN
		&& rdata->msg_info.msg != NULL;
}

static void add_number_header(pjsip_tx_data *tdata, const char *name, int value)
{
	char text[16];

	snprintf(text, sizeof(text), "%d", value);
	fprs_shim_sip_add_header(tdata, name, text);
}

static pj_bool_t on_rx_request(pjsip_rx_data *rdata)
{
	struct fprs_sip_request req = { 0 };
	struct fprs_sip_response resp = { .expires = -1, .min_expires = -1 };
	char event[128], if_match[256], expires[64], ctype[256], contact[PJSIP_MAX_URL_SIZE];
	const char *value;
	int len;
	pjsip_msg *msg;
	pjsip_uri *uri;
	struct ast_sip_endpoint *endpoint;
	pjsip_tx_data *tdata;

	if (!rdata_layout_ok(rdata)) {
		static int said;

		if (!said) {
			said = 1;
			ast_log(LOG_ERROR, "A received SIP message does not lie where these pjproject headers "
				"put it (built against headers configured otherwise than this libasteriskpj?): "
				"SIP PUBLISH is left to Asterisk. Rebuild with scripts/pjproject-headers.\n");
		}
		return PJ_FALSE;
	}
	msg = rdata->msg_info.msg;
	if (msg->type != PJSIP_REQUEST_MSG || pjsip_method_cmp(&msg->line.req.method, &publish_method)) {
		return PJ_FALSE;
	}
	len = header_value(msg, "Event", "o", event, sizeof(event), &value);
	if (len < 0 || len < 8 || strncasecmp(value, "presence", 8)
		|| (len > 8 && value[8] != ';' && value[8] != ' ' && value[8] != '\t')) {
		return PJ_FALSE;
	}
	req.event = value;
	req.event_len = len;
	/* An endpoint Asterisk identified (and authenticated, where it has inbound auth). */
	endpoint = fprs_shim_sip_rdata_endpoint(rdata);
	if (!endpoint) {
		return PJ_FALSE;
	}
	req.endpoint = ast_sorcery_object_get_id(endpoint);
	req.endpoint_len = strlen(req.endpoint);

	uri = msg->line.req.uri;
	if (PJSIP_URI_SCHEME_IS_SIP(uri) || PJSIP_URI_SCHEME_IS_SIPS(uri)) {
		pjsip_sip_uri *sip_uri = pjsip_uri_get_uri(uri);

		req.sip_uri = 1;
		req.user = sip_uri->user.ptr;
		req.user_len = sip_uri->user.slen;
	}
	if ((len = header_value(msg, "SIP-If-Match", NULL, if_match, sizeof(if_match), &value)) >= 0) {
		req.if_match = value;
		req.if_match_len = len;
		req.has_if_match = 1;
	}
	if ((len = header_value(msg, "Expires", NULL, expires, sizeof(expires), &value)) >= 0) {
		req.expires = value;
		req.expires_len = len;
		req.has_expires = 1;
	}
	if (msg->body && msg->body->len > 0) {
		req.body = msg->body->data;
		req.body_len = msg->body->len;
		req.has_body = 1;
		len = pjsip_media_type_print(ctype, sizeof(ctype) - 1, &msg->body->content_type);
		if (len > 0) {
			req.content_type = ctype;
			req.content_type_len = len;
		}
	}
	if ((len = header_value(msg, "Contact", "m", contact, sizeof(contact), &value)) >= 0) {
		req.contact = value;
		req.contact_len = len;
	} else {
		len = snprintf(contact, sizeof(contact), "%s:%d", rdata->pkt_info.src_name,
			rdata->pkt_info.src_port);
		req.contact = contact;
		req.contact_len = len > 0 && (size_t) len < sizeof(contact) ? len : 0;
	}

	if (!fprs_sip_publish(&req, &resp)) {
		ao2_cleanup(endpoint);
		return PJ_FALSE;
	}
	if (fprs_shim_sip_create_response(rdata, resp.status, &tdata)) {
		ao2_cleanup(endpoint);
		return PJ_TRUE;
	}
	if (resp.etag[0]) {
		fprs_shim_sip_add_header(tdata, "SIP-ETag", resp.etag);
	}
	if (resp.expires >= 0) {
		add_number_header(tdata, "Expires", resp.expires);
	}
	if (resp.min_expires >= 0) {
		add_number_header(tdata, "Min-Expires", resp.min_expires);
	}
	if (resp.accept) {
		fprs_shim_sip_add_header(tdata, "Accept", resp.accept);
	}
	/* As res_pjsip's own OPTIONS handler does: a transaction absorbs retransmissions (a
	 * retransmitted modify must not meet its old, replaced entity tag). */
	if (fprs_shim_sip_send_response(rdata, tdata, endpoint)) {
		pjsip_tx_data_dec_ref(tdata);
	}
	ao2_cleanup(endpoint);
	return PJ_TRUE;
}

static pjsip_module publish_module = {
	.name = { "func_presencestate_rs PUBLISH", 29 },
	.id = -1,
	.priority = PJSIP_MOD_PRIORITY_APPLICATION - 1,
	.on_rx_request = on_rx_request,
};

/* A PUBLISH of known fields, parsed by the running libasteriskpj and read through our
 * headers: a layout that differs from the library's reads other values. */
static const char test_message[] =
	"PUBLISH sip:layout@127.0.0.1 SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-fprs-layout\r\n"
	"From: <sip:layout@127.0.0.1>;tag=1\r\n"
	"To: <sip:layout@127.0.0.1>\r\n"
	"Call-ID: fprs-layout-check\r\n"
	"CSeq: 4242 PUBLISH\r\n"
	"Max-Forwards: 70\r\n"
	"Expires: 4321\r\n"
	"Event: presence\r\n"
	"Content-Type: application/pidf+xml\r\n"
	"Content-Length: 5\r\n"
	"\r\n"
	"hello";

static const char *layout_problem;

static int check_layout(void *data)
{
	pjsip_endpoint *endpt = fprs_shim_sip_endpoint();
	pj_pool_t *pool;
	pjsip_msg *msg;
	pjsip_parser_err_report errors;
	pjsip_expires_hdr *expires;
	pjsip_cseq_hdr *cseq;
	pjsip_sip_uri *uri;

	layout_problem = NULL;
	if (strcmp(pj_get_version(), PJ_VERSION)) {
		layout_problem = "the running libasteriskpj is another pjproject version than the headers";
		return 0;
	}
	pool = endpt ? pjsip_endpt_create_pool(endpt, "fprs-layout", 4000, 4000) : NULL;
	if (!pool) {
		layout_problem = "no pool to parse a test message";
		return 0;
	}
	pj_list_init(&errors);
	msg = pjsip_parse_msg(pool, (char *) test_message, sizeof(test_message) - 1, &errors);
	expires = msg ? pjsip_msg_find_hdr(msg, PJSIP_H_EXPIRES, NULL) : NULL;
	cseq = msg ? pjsip_msg_find_hdr(msg, PJSIP_H_CSEQ, NULL) : NULL;
	uri = msg && PJSIP_URI_SCHEME_IS_SIP(msg->line.req.uri) ? pjsip_uri_get_uri(msg->line.req.uri) : NULL;
	if (!msg || msg->type != PJSIP_REQUEST_MSG || pjsip_method_cmp(&msg->line.req.method, &publish_method)
		|| !expires || expires->ivalue != 4321 || !cseq || cseq->cseq != 4242
		|| !uri || pj_strcmp2(&uri->user, "layout") || !msg->body || msg->body->len != 5
		|| memcmp(msg->body->data, "hello", 5)
		|| pj_strcmp2(&msg->body->content_type.subtype, "pidf+xml")) {
		layout_problem = "a test message parsed by libasteriskpj reads back wrong through these "
			"headers (their struct layouts differ from the library's)";
	}
	pjsip_endpt_release_pool(endpt, pool);
	return 0;
}

const char *fprs_shim_sip_register(void)
{
	if (fprs_shim_sip_in_pjsip_thread(check_layout, NULL)) {
		return "could not run the layout check in a PJSIP thread";
	}
	if (layout_problem) {
		return layout_problem;
	}
	if (fprs_shim_sip_register_service(&publish_module)) {
		return "res_pjsip refused to register the PUBLISH service";
	}
	return NULL;
}

void fprs_shim_sip_unregister(void)
{
	/* pjsip takes its module list's write lock: a callback still running finishes first. */
	fprs_shim_sip_unregister_service(&publish_module);
}
