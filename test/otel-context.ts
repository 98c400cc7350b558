import { type Context, type ContextManager, context, ROOT_CONTEXT } from "@opentelemetry/api";

/**
 * The smallest context manager that makes `context.with` work synchronously,
 * enough for code that reads `context.active()` before its first await.
 */
class StackContextManager implements ContextManager {
  #stack: Context[] = [];
  active(): Context {
    return this.#stack[this.#stack.length - 1] ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    this.#stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#stack = [];
    return this;
  }
}

/** Registers the stack context manager globally; returns a function that removes it. */
export function useStackContextManager(): () => void {
  context.setGlobalContextManager(new StackContextManager());
  return () => context.disable();
}
