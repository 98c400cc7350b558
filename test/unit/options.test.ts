import { describe, expect, it } from "vitest";
import { clientDefaults, eventsDefaults } from "../../src/client/options.js";
import { subscribeDefaults } from "../../src/consume/options.js";
import { rejectDefaults, settleDefaults } from "../../src/consume/settle-options.js";
import { type Defaults, given, mergeOptions } from "../../src/internal/options.js";
import { idempotentDefaults } from "../../src/process/idempotent.js";
import { processDefaults } from "../../src/process/options.js";
import { replayDefaults } from "../../src/process/replay.js";
import { publishDefaults } from "../../src/publish/options.js";
import { consumerDefaults } from "../../src/streams/consumers.js";
import { streamDefaults } from "../../src/streams/streams.js";
import { validationAt } from "./expect-error.js";

interface SampleOptions {
  readonly sizeMs?: number;
  readonly label?: string;
  readonly computed?: number;
}

const sampleDefaults: Defaults<SampleOptions> = Object.freeze({ sizeMs: 10, label: "x", computed: undefined });

describe("mergeOptions", () => {
  it("gives every default when nothing is given", () => {
    expect(mergeOptions("options", undefined, sampleDefaults)).toEqual({ sizeMs: 10, label: "x", computed: undefined });
    expect(mergeOptions("options", {}, sampleDefaults)).toEqual({ sizeMs: 10, label: "x", computed: undefined });
  });

  it("takes given values over the defaults, unvalidated", () => {
    expect(mergeOptions("options", { sizeMs: -3, computed: "odd" }, sampleDefaults)).toEqual({
      sizeMs: -3,
      label: "x",
      computed: "odd",
    });
  });

  it("takes the default where a value is undefined", () => {
    expect(mergeOptions("options", { sizeMs: undefined, label: "y" }, sampleDefaults)).toEqual({
      sizeMs: 10,
      label: "y",
      computed: undefined,
    });
  });

  it("keeps null, false, 0 and empty strings as given", () => {
    const merged = mergeOptions<SampleOptions>("options", { sizeMs: 0, label: "" }, sampleDefaults);
    expect(merged.sizeMs).toBe(0);
    expect(merged.label).toBe("");
    expect(mergeOptions<SampleOptions>("options", { label: null }, sampleDefaults).label).toBeNull();
    expect(mergeOptions<SampleOptions>("options", { label: false }, sampleDefaults).label).toBe(false);
  });

  it("does not change the defaults or the input", () => {
    const input = { sizeMs: 5 };
    mergeOptions("options", input, sampleDefaults);
    expect(input).toEqual({ sizeMs: 5 });
    expect(sampleDefaults).toEqual({ sizeMs: 10, label: "x", computed: undefined });
  });

  it.each<[string, unknown, string]>([
    ["an unknown key", { size: 1 }, "options.size"],
    ["an unknown key given as undefined", { size: undefined }, "options.size"],
    ["a key of Object.prototype", { toString: "x" }, "options.toString"],
    ["__proto__ as an own key", JSON.parse('{"__proto__": 1}'), "options.__proto__"],
    ["a number", 5, "options"],
    ["a string", "sizeMs", "options"],
    ["null", null, "options"],
    ["an array", [], "options"],
  ])("refuses %s, naming %s", (_, input, field) => {
    expect(() => mergeOptions("options", input, sampleDefaults)).toThrow(validationAt(field));
  });

  it("reads own keys only: inherited ones are neither refused nor taken", () => {
    const input = Object.create({ size: 1, sizeMs: 99 }) as Record<string, unknown>;
    input.label = "own";
    expect(mergeOptions("options", input, sampleDefaults)).toEqual({ sizeMs: 10, label: "own", computed: undefined });
  });

  it("names the field it was given in errors", () => {
    expect(() => mergeOptions("sources[2]", { strem: "x" }, sampleDefaults)).toThrow(validationAt("sources[2].strem"));
  });
});

describe("given", () => {
  it.each<[unknown, boolean]>([
    [{ label: "x" }, true],
    [{ label: 0 }, true],
    [{ label: null }, true],
    [{ label: undefined }, false],
    [{}, false],
    [undefined, false],
    [null, false],
    ["label", false],
  ])("given(%j, 'label') is %s", (input, expected) => {
    expect(given(input, "label")).toBe(expected);
  });
});

describe("the defaults constants", () => {
  it.each(
    Object.entries({
      publishDefaults,
      subscribeDefaults,
      settleDefaults,
      rejectDefaults,
      processDefaults,
      streamDefaults,
      consumerDefaults,
      replayDefaults,
      idempotentDefaults,
      clientDefaults,
      eventsDefaults,
    }),
  )("%s is frozen", (_, defaults) => {
    expect(Object.isFrozen(defaults)).toBe(true);
    expect(() => {
      (defaults as Record<string, unknown>).injected = 1;
    }).toThrow(TypeError);
  });

  it("extend one another where options do", () => {
    expect(rejectDefaults).toMatchObject(settleDefaults);
    expect(eventsDefaults).toMatchObject(clientDefaults);
  });
});
