"use strict";
// The alarm tone: Web Audio, repeating while any critical alert needs attention. Browsers only
// start audio after a click on the page, so `enable()` is called from a click handler and the
// page says so when sound is still blocked.
window.AlarmSound = class AlarmSound {
  constructor(onChange) {
    this.onChange = onChange;
    this.context = null;
    this.wanted = false;      // at least one critical alert needs attention
    this.timer = null;
    this.beeps = 0;           // tones actually started; tests read it from data-beeps
    this.mutedUntil = Number(localStorage.getItem("soundMutedUntil") || 0);
    this.enabled = localStorage.getItem("soundEnabled") === "1";
  }

  get muted() { return Date.now() < this.mutedUntil; }
  get running() { return this.context !== null && this.context.state === "running"; }

  // Must run inside a click (or key) handler: that is what lets the browser start audio.
  enable() {
    this.enabled = true;
    localStorage.setItem("soundEnabled", "1");
    try {
      if (this.context === null) this.context = new AudioContext();
      this.context.resume().then(() => this.sync(), () => this.sync());
    } catch (e) { /* no Web Audio: the page says sound is blocked */ }
    this.sync();
  }

  test() { this.enable(); this.tone(0); }

  mute(minutes) {
    this.mutedUntil = Date.now() + minutes * 60000;
    localStorage.setItem("soundMutedUntil", String(this.mutedUntil));
    this.sync();
  }

  unmute() { this.mutedUntil = 0; localStorage.removeItem("soundMutedUntil"); this.sync(); }

  want(on) { if (on !== this.wanted) { this.wanted = on; this.sync(); } }

  state() {
    if (!this.enabled) return "disabled";
    if (this.muted) return "muted";
    if (!this.running) return "blocked";
    return this.wanted ? "playing" : "ready";
  }

  sync() {
    const play = this.state() === "playing";
    if (play && this.timer === null) {
      this.pattern();
      this.timer = setInterval(() => this.pattern(), 1500);
    } else if (!play && this.timer !== null) {
      clearInterval(this.timer); this.timer = null;
    }
    if (this.muted && this.unmuteTimer === undefined) {
      this.unmuteTimer = setTimeout(() => { this.unmuteTimer = undefined; this.sync(); }, this.mutedUntil - Date.now() + 50);
    }
    this.onChange(this);
  }

  pattern() {
    if (this.state() !== "playing") return;
    this.tone(0); this.tone(0.35);
  }

  // A two-frequency fire-alarm style tone of 0.3 s, `delay` seconds from now.
  tone(delay) {
    if (!this.running) return;
    const ctx = this.context;
    const start = ctx.currentTime + delay;
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.setValueAtTime(960, start);
    osc.frequency.setValueAtTime(770, start + 0.15);
    gain.gain.setValueAtTime(0.15, start);
    gain.gain.setValueAtTime(0, start + 0.3);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start); osc.stop(start + 0.31);
    this.beeps += 1;
    this.onChange(this);
  }
};
