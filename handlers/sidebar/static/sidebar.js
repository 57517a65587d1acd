// The chat toolbar page: ask WeCom's JS-SDK (ww) which chat the toolbar is in, load that chat's
// panels from the server (which checks the signed-in member may see them), then send materials
// with one tap (ww.sendChatMessage, then the server records the send), settle tasks, edit tags and
// record what the customer said of each kind of marketing.
(function () {
  "use strict";
  var root = document.getElementById("sidebar");
  var panels = document.getElementById("panels");
  var status = document.getElementById("status");
  var csrf = root.dataset.csrf;

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "muted";
  }

  function message(error) {
    return (error && (error.errMsg || error.message)) || String(error);
  }

  async function post(path, body) {
    var reply = await fetch(path, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf}, body: JSON.stringify(body || {})});
    var data = await reply.json().catch(function () { return {}; });
    if (!reply.ok) throw new Error(data.error || ("HTTP " + reply.status));
    return data;
  }

  async function load(path) {
    var reply = await fetch(path, {credentials: "same-origin"});
    if (reply.status === 401) { location.reload(); return; }  // session over: sign in again
    panels.innerHTML = await reply.text();
    say("", false);
  }

  async function start() {
    ww.register({
      corpId: root.dataset.corpId,
      agentId: Number(root.dataset.agentId),
      jsApiList: ["getContext", "getCurExternalContact", "getCurExternalChat", "sendChatMessage"],
      getAgentConfigSignature: async function (url) {
        var reply = await fetch("/sidebar/signature?url=" + encodeURIComponent(url), {credentials: "same-origin"});
        var data = await reply.json();
        if (!reply.ok) throw new Error(data.error || ("HTTP " + reply.status));
        return data;
      }
    });
    var context = await ww.getContext();
    if (context.entry === "single_chat_tools") {
      var contact = await ww.getCurExternalContact();
      await load("/sidebar/customer/" + encodeURIComponent(contact.userId));
    } else if (context.entry === "group_chat_tools") {
      var chat = await ww.getCurExternalChat();
      await load("/sidebar/group/" + encodeURIComponent(chat.chatId));
    } else {
      say("请在客户单聊或客户群的聊天工具栏中打开。", true);
    }
  }

  // An image or a file goes out by a WeCom media id (three days' life): asked for on the tap.
  async function withMedia(base, offer) {
    if (!offer.media) return {messages: offer.messages, mediaid: ""};
    var data = await post(base + "/media", {material: offer.material});
    var messages = offer.messages.map(function (m) {
      if (m.msgtype !== "image" && m.msgtype !== "file") return m;
      var filled = {msgtype: m.msgtype};
      filled[m.msgtype] = {mediaid: data.mediaid};
      return filled;
    });
    return {messages: messages, mediaid: data.mediaid};
  }

  async function send(button) {
    var offer = JSON.parse(button.dataset.send);
    var scope = panels.firstElementChild;  // #customer or #group
    var base = "/sidebar/" + scope.dataset.kind + "/" + encodeURIComponent(scope.dataset.id);
    var note = button.parentElement.querySelector(".sent-note");
    button.disabled = true;
    try {
      var ready = await withMedia(base, offer);
      for (var i = 0; i < ready.messages.length; i++) await ww.sendChatMessage(ready.messages[i]);
      await post(base + "/sent", {material: offer.material, link: offer.link, mediaid: ready.mediaid,
                                  task: offer.task || ""});
      note.textContent = "已发送";
    } catch (error) {
      note.textContent = "未发送：" + message(error);
      note.className = "sent-note error";
      button.disabled = false;
    }
  }

  async function press(button) {
    var task = button.closest(".task");
    var label = task.querySelector(".task-status");
    task.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    try {
      var data = await post("/sidebar/task/" + encodeURIComponent(task.dataset.taskId) + "/" + button.dataset.taskButton);
      task.querySelectorAll("button").forEach(function (b) { b.remove(); });
      label.textContent = data.status_label;
    } catch (error) {
      label.textContent = message(error);
      label.className = "task-status error";
      task.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    }
  }

  function editId() {
    var bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  // One tap sets or removes one manager-owned tag; the server answers the customer's tags.
  async function toggleTag(button) {
    var scope = panels.firstElementChild;
    var editor = button.closest("#tag-editor");
    var note = editor.querySelector(".tag-note");
    var on = button.getAttribute("aria-pressed") === "true";
    var change = on ? {remove: [button.dataset.tag]} : {add: [button.dataset.tag]};
    change.edit = editId();
    button.disabled = true;
    try {
      var data = await post("/sidebar/customer/" + encodeURIComponent(scope.dataset.id) + "/tags", change);
      button.setAttribute("aria-pressed", on ? "false" : "true");
      var list = document.getElementById("tags");
      list.replaceChildren.apply(list, data.tags.map(function (t) {
        var item = document.createElement("li");
        item.textContent = t;
        return item;
      }));
      note.textContent = "已保存";
      note.className = "tag-note muted";
    } catch (error) {
      note.textContent = "未保存：" + message(error);
      note.className = "tag-note error";
    }
    button.disabled = false;
  }

  // The customer said they do (not) want a kind of marketing: record it, then reload the panels
  // (the offers follow what they said).
  async function toggleConsent(button) {
    var scope = panels.firstElementChild;
    var granted = button.getAttribute("aria-pressed") !== "true";
    button.disabled = true;
    try {
      await post("/sidebar/customer/" + encodeURIComponent(scope.dataset.id) + "/consent",
                 {category: button.dataset.consent, granted: granted});
      await load("/sidebar/customer/" + encodeURIComponent(scope.dataset.id));
      var reopened = document.getElementById("consent");
      if (reopened) reopened.open = true;
    } catch (error) {
      var note = button.closest("#consent").querySelector(".consent-note");
      note.textContent = "未保存：" + message(error);
      note.className = "consent-note error";
      button.disabled = false;
    }
  }

  panels.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.send) send(button);
    else if (button.dataset.taskButton) press(button);
    else if (button.dataset.tag) toggleTag(button);
    else if (button.dataset.consent) toggleConsent(button);
  });

  if (typeof ww === "undefined") {
    say("无法加载企业微信 JS-SDK，请在企业微信中打开。", true);
  } else {
    start().catch(function (error) { say("无法读取当前聊天：" + message(error), true); });
  }
})();
