package dev.recur;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.core.importer.Location;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAnyPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;

/**
 * The layers point one way: {@code cli} → {@code apps} → the model API ({@code nn}) → the schedule → the backend
 * contract and the backends, with the engine SPI ({@code engine}), the shared configuration ({@code config}), host
 * tensors and file formats ({@code io}) below. Production classes only: a test may reach across layers (a backend's
 * test builds the schedule it falls back to).
 */
@AnalyzeClasses(packages = "dev.recur",
        importOptions = {ImportOption.DoNotIncludeTests.class, ArchitectureTest.NoTestClassesFolder.class})
class ArchitectureTest {
    /**
     * {@link ImportOption.DoNotIncludeTests} knows Maven's tests only under {@code target/test-classes}; work trees
     * build into folders of their own ({@code -Drecur.build=target-x}).
     */
    static final class NoTestClassesFolder implements ImportOption {
        @Override
        public boolean includes(Location location) {
            return !location.contains("/test-classes/");
        }
    }

    /** Any class of this library outside the given packages ({@code ..} takes sub-packages, a bare name does not). */
    private static DescribedPredicate<JavaClass> recurOutside(String... allowed) {
        return resideInAPackage("dev.recur..").and(not(resideInAnyPackage(allowed)));
    }

    @ArchTest
    static final ArchRule tensorIsTheBottom = noClasses().that().resideInAPackage("dev.recur.tensor..")
            .should().dependOnClassesThat(recurOutside("dev.recur.tensor.."));

    @ArchTest
    static final ArchRule configSitsOnTensorsOnly = noClasses().that().resideInAPackage("dev.recur.config..")
            .should().dependOnClassesThat(recurOutside("dev.recur.config..", "dev.recur.tensor.."))
            .because("every layer shares the configuration types, so they can know none of them");

    /** io reads and writes files of host tensors; the model API uses it, nothing below it needs it. */
    @ArchTest
    static final ArchRule ioSitsOnTensorsOnly = noClasses().that().resideInAPackage("dev.recur.io..")
            .should().dependOnClassesThat(recurOutside("dev.recur.io..", "dev.recur.tensor.."));

    @ArchTest
    static final ArchRule engineKnowsOnlyConfigTensorsAndTheContract = noClasses()
            .that().resideInAPackage("dev.recur.engine..")
            .should().dependOnClassesThat(recurOutside("dev.recur.engine..", "dev.recur.config..", "dev.recur.tensor..",
                    "dev.recur.backend"))
            .because("the engine SPI is what the model API needs of whatever runs a network, below both");

    @ArchTest
    static final ArchRule backendsKnowNoNetworksAndNoSchedule = noClasses().that().resideInAPackage("dev.recur.backend..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.recur.schedule..", "dev.recur.nn..",
                    "dev.recur.cli..", "dev.recur.apps..")
            .because("the backend contract supplies memory, GEMM and named kernels; the model API picks the engine");

    @ArchTest
    static final ArchRule scheduleKnowsOnlyTheContract = noClasses().that().resideInAPackage("dev.recur.schedule..")
            .should().dependOnClassesThat(recurOutside("dev.recur.schedule..", "dev.recur.backend", "dev.recur.engine..",
                    "dev.recur.config..", "dev.recur.tensor.."))
            .because("the schedule is written once against DeviceBackend and runs unchanged on every device backend");

    @ArchTest
    static final ArchRule scheduleUsesNoNativeBindings = noClasses().that().resideInAPackage("dev.recur.schedule..")
            .should().dependOnClassesThat().resideInAnyPackage("org.jocl..", "jcuda..", "java.lang.foreign..");

    @ArchTest
    static final ArchRule modelApiKnowsNoCommandLine = noClasses().that().resideInAPackage("dev.recur.nn..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.recur.cli..", "dev.recur.apps..");

    @ArchTest
    static final ArchRule onlyTheCommandLineUsesIt = noClasses().that().resideOutsideOfPackage("dev.recur.cli..")
            .should().dependOnClassesThat().resideInAPackage("dev.recur.cli..");

    /** The whole picture; the rules above say the same per package, with the reasons. */
    @ArchTest
    static final ArchRule layers = layeredArchitecture().consideringOnlyDependenciesInLayers()
            .layer("cli").definedBy("dev.recur.cli..")
            .layer("apps").definedBy("dev.recur.apps..")
            .layer("model API").definedBy("dev.recur.nn..")
            .layer("schedule").definedBy("dev.recur.schedule..")
            .layer("backends").definedBy("dev.recur.backend..")
            .layer("engine SPI").definedBy("dev.recur.engine..")
            .layer("config").definedBy("dev.recur.config..")
            .layer("io").definedBy("dev.recur.io..")
            .layer("tensor").definedBy("dev.recur.tensor..")
            .whereLayer("cli").mayNotBeAccessedByAnyLayer()
            .whereLayer("apps").mayOnlyBeAccessedByLayers("cli")
            .whereLayer("model API").mayOnlyBeAccessedByLayers("apps", "cli")
            .whereLayer("schedule").mayOnlyBeAccessedByLayers("model API", "apps", "cli")
            .whereLayer("backends").mayOnlyBeAccessedByLayers("schedule", "model API", "apps", "cli", "engine SPI")
            .whereLayer("engine SPI").mayOnlyBeAccessedByLayers("backends", "schedule", "model API", "apps", "cli")
            .whereLayer("io").mayOnlyBeAccessedByLayers("model API", "apps", "cli")
            .whereLayer("config").mayOnlyBeAccessedByLayers("engine SPI", "backends", "schedule", "model API", "apps",
                    "cli");
}
