// The cockpit's charts (Apache ECharts, vendored beside this file). Each chart draws the numbers
// of the table below it, from the page's JSON block; the tables stay the source of truth.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("cockpit-data").textContent);
  var charts = [];
  function draw(id, option) {
    var el = document.getElementById(id);
    if (!el || typeof echarts === "undefined") { return; }
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption(Object.assign({ animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
      grid: { left: 48, right: 24, top: 36, bottom: 32 } }, option));
    el.setAttribute("data-drawn", "true");
    charts.push(chart);
  }
  function bars(names, series) {
    return { xAxis: { type: "category", data: names }, yAxis: { type: "value", minInterval: 1 },
      series: series.map(function (s) { return { name: s[0], type: "bar", data: s[1] }; }) };
  }
  draw("chart-daily", { xAxis: { type: "category", data: data.daily.days }, yAxis: { type: "value", minInterval: 1 },
    series: [{ name: "新增", type: "line", data: data.daily.added }, { name: "流失", type: "line", data: data.daily.lost },
             { name: "净增", type: "bar", data: data.daily.net }] });
  draw("chart-channels", bars(data.channels.names, [["新增", data.channels.added], ["流失", data.channels.lost]]));
  draw("chart-skips", bars(data.skips.names, [["本期", data.skips.current], ["上期", data.skips.previous]]));
  draw("chart-retention", { xAxis: { type: "category", data: data.retention.weeks },
    yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    series: [["次日", data.retention.d1], ["7日", data.retention.d7], ["30日", data.retention.d30]].map(function (s) {
      return { name: s[0], type: "line", connectNulls: false, data: s[1] }; }) });
  draw("chart-ranking", bars(data.ranking.names, [["净增", data.ranking.net]]));
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
}());
