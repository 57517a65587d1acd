// The sandbox's stand-in for WeCom's JS-SDK (@wecom/jssdk 2.x), served as /sandbox/ww.js with two
// lines in front naming the webview this browser plays (window.__SANDBOX_WEBVIEW__, null outside
// one) and the sandbox's address (window.__SANDBOX_BASE__). See scrm/sandbox/server_jssdk.py.
//
// Like WeCom's webview it answers nothing before the page's agentConfig signature checks out:
// the first call asks the page's getAgentConfigSignature(url) for {timestamp, nonceStr,
// signature} of this page's URL (without its #fragment) and has the sandbox check it against the
// app's live jsapi ticket. A wrong signature rejects every call with "agentConfig:fail …".
(function () {
  "use strict";
  var view = window.__SANDBOX_WEBVIEW__;
  var base = window.__SANDBOX_BASE__;
  var options = null;
  var configured = null;

  function fail(api, message) {
    var error = new Error(api + ":fail " + message);
    error.errMsg = api + ":fail " + message;
    return error;
  }

  // text/plain keeps the request "simple": no CORS preflight to the sandbox's other port.
  function post(path, body) {
    return fetch(base + path, {method: "POST", body: JSON.stringify(body)}).then(function (r) { return r.json(); });
  }

  function agentConfig() {
    if (configured === null) {
      configured = (async function () {
        if (!view) throw fail("agentConfig", "not inside a WeCom webview (open the page through /sandbox/webview)");
        if (!options || typeof options.getAgentConfigSignature !== "function") {
          throw fail("agentConfig", "ww.register({corpId, agentId, getAgentConfigSignature}) first");
        }
        var url = location.href.split("#")[0];
        var signed = await options.getAgentConfigSignature(url);
        var reply = await post("/sandbox/jssdk/agent_config", {
          webview: view.webview, corpId: options.corpId, agentId: options.agentId, url: url,
          timestamp: signed.timestamp, nonceStr: signed.nonceStr, signature: signed.signature});
        if (reply.errcode !== 0) throw fail("agentConfig", reply.errmsg);
      })();
      configured.catch(function () { configured = null; });  // a later call may try again
    }
    return configured;
  }

  async function api(name, answer) {
    await agentConfig();
    var result = await answer();
    result.errMsg = name + ":ok";
    return result;
  }

  window.ww = {
    SDK_VERSION: "sandbox",
    register: function (opts) { options = opts; configured = null; },
    getContext: function () {
      return api("getContext", async function () { return {entry: view.entry, shareTicket: ""}; });
    },
    getCurExternalContact: function () {
      return api("getCurExternalContact", async function () {
        if (view.entry !== "single_chat_tools") throw fail("getCurExternalContact", "not a 1:1 chat toolbar");
        return {userId: view.customer};
      });
    },
    getCurExternalChat: function () {
      return api("getCurExternalChat", async function () {
        if (view.entry !== "group_chat_tools") throw fail("getCurExternalChat", "not a group chat toolbar");
        return {chatId: view.chat};
      });
    },
    // Any msgtype WeCom's client takes (text, image, video, file, news, miniprogram); like the
    // client it reads only the part the msgtype names (enterChat aside), and the sandbox checks
    // it (an image/video/file's mediaid must be this corp's upload) before recording the send.
    sendChatMessage: function (message) {
      return api("sendChatMessage", async function () {
        var kind = message && message.msgtype;
        var sent = {msgtype: kind};
        if (kind && message[kind] !== undefined) sent[kind] = message[kind];
        var reply = await post("/sandbox/jssdk/send", {webview: view.webview, message: sent});
        if (reply.errcode !== 0) throw fail("sendChatMessage", reply.errmsg);
        return {};
      });
    }
  };
})();
