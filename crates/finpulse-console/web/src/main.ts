// The console's shell: sign-in, role-aware navigation, language and theme, and a router over
// the History API so every screen (with its state in the query string) has a shareable URL.

import "./style.css";
import { ApiError, get, post, setCsrf, type Who } from "./api";
import { clear, h } from "./dom";
import { lang, preferredLang, setLang, t, type Lang, type MessageKey } from "./i18n";
import { disposeCharts } from "./chart";
import { screens, type Screen } from "./screens";
import { leaveScreen } from "./widgets";

const app = document.getElementById("app")!;
let who: Who | undefined;

function applyLang(l: Lang): void {
  setLang(l);
  localStorage.setItem("finpulse.lang", l);
  document.documentElement.lang = l;
}

function applyTheme(theme: string): void {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem("finpulse.theme", theme);
}

function allowed(s: Screen): boolean {
  return !!who && (s.needs === undefined || who.permissions.includes(s.needs));
}

/** Whether the next screen drawn takes the focus (after a move made from the page, so a
 * keyboard user lands on the new screen's heading rather than back at the top). */
let focusScreen = false;

export function navigate(path: string): void {
  history.pushState(null, "", path);
  focusScreen = true;
  void render();
}

async function signIn(): Promise<void> {
  clear(app);
  const error = h("p", { class: "error", role: "alert" });
  const name = h("input", { id: "signin-name", name: "name", autocomplete: "username", required: true });
  const password = h("input", { id: "signin-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          who = await post<Who>("/v1/auth/login", { name: name.value, password: password.value });
          setCsrf(who.csrf_token);
          await render();
        } catch (err) {
          error.textContent = t("msg.signin_failed", { error: err instanceof Error ? err.message : String(err) });
        }
      },
    },
    h("h1", {}, t("app.name")),
    h("label", { for: "signin-name" }, t("field.name")),
    name,
    h("label", { for: "signin-password" }, t("field.password")),
    password,
    h("button", { type: "submit", id: "signin-submit" }, t("action.signin")),
    error,
    languageSwitch(),
  );
  app.append(form);
  name.focus();
}

function languageSwitch(): HTMLElement {
  const select = h(
    "select",
    {
      id: "lang",
      "aria-label": t("field.language"),
      onchange: (e: Event) => {
        applyLang((e.target as HTMLSelectElement).value as Lang);
        void render();
      },
    },
    h("option", { value: "zh-CN", selected: lang() === "zh-CN" }, "中文"),
    h("option", { value: "en", selected: lang() === "en" }, "English"),
  );
  return select;
}

function themeSwitch(): HTMLElement {
  const current = document.documentElement.dataset.theme ?? "light";
  return h(
    "button",
    {
      id: "theme",
      type: "button",
      onclick: () => {
        applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
        void render();
      },
    },
    t(current === "dark" ? "theme.light" : "theme.dark"),
  );
}

async function render(): Promise<void> {
  leaveScreen();
  disposeCharts();
  if (!who) {
    try {
      who = await get<Who>("/v1/auth/whoami");
      setCsrf(who.csrf_token);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return signIn();
      throw e;
    }
  }
  const visible = screens.filter(allowed);
  const path = location.pathname === "/" ? (visible[0]?.path ?? "/") : location.pathname;
  const screen = screens.find((s) => path === s.path || path.startsWith(`${s.path}/`));
  clear(app);
  const link = (s: Screen) =>
    h(
      "a",
      {
        href: s.path,
        class: s === screen ? "active" : undefined,
        "aria-current": s === screen ? "page" : undefined,
        onclick: (e: Event) => {
          e.preventDefault();
          navigate(s.path);
        },
      },
      t(s.title as MessageKey),
    );
  // Screens by group, each group under its heading.
  const groups = [...new Set(visible.map((s) => s.group))];
  const nav = h(
    "nav",
    { "aria-label": t("field.navigation") },
    ...groups.map((g) =>
      g === undefined
        ? h("div", { class: "nav-group" }, ...visible.filter((s) => s.group === g).map(link))
        : h(
            "div",
            { class: "nav-group", role: "group", "aria-labelledby": `nav-${g}` },
            h("span", { class: "nav-heading", id: `nav-${g}` }, t(`group.${g}` as MessageKey)),
            ...visible.filter((s) => s.group === g).map(link),
          ),
    ),
  );
  const header = h(
    "header",
    {},
    h("strong", {}, t("app.name")),
    h("span", { class: "who", id: "who" }, `${who!.actor} · ${who!.role} · ${who!.tenant}`),
    languageSwitch(),
    themeSwitch(),
    h(
      "button",
      {
        type: "button",
        id: "signout",
        onclick: async () => {
          await post("/v1/auth/logout").catch(() => undefined);
          who = undefined;
          setCsrf(undefined);
          history.pushState(null, "", "/");
          void signIn();
        },
      },
      t("action.signout"),
    ),
  );
  const main = h("main", { id: "screen", tabindex: -1 });
  const skip = h("a", { href: "#screen", class: "skip", onclick: (e: Event) => (e.preventDefault(), main.focus()) }, t("a11y.skip"));
  app.append(skip, header, h("div", { class: "body" }, nav, main));
  if (!screen || !allowed(screen)) {
    main.append(h("p", { class: "error" }, t("msg.not_permitted")));
    return;
  }
  main.setAttribute("data-screen", screen.path.slice(1));
  const title = h("h1", { tabindex: -1 }, t(screen.title as MessageKey));
  main.append(title);
  if (focusScreen) title.focus();
  focusScreen = false;
  try {
    await screen.render(main, { who: who!, navigate, params: new URLSearchParams(location.search) });
  } catch (e) {
    main.append(h("p", { class: "error", role: "alert" }, t("msg.error", { error: e instanceof Error ? e.message : String(e) })));
  }
  main.setAttribute("data-ready", "true");
}

applyLang(preferredLang(localStorage.getItem("finpulse.lang"), navigator.languages));
applyTheme(localStorage.getItem("finpulse.theme") ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
window.addEventListener("popstate", () => void render());
void render();
